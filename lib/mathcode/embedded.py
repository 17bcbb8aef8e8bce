"""Offline sources built at run time from PyPI packages, each standing in for one MathCode-Pile source.

| name                      | built from                                   | stands in for (paper)                      |
|---------------------------|----------------------------------------------|--------------------------------------------|
| champ_solutions           | champ-dataset problems + step solutions      | textbook / competition worked solutions    |
| champ_concepts            | champ-dataset concepts and hints             | textbook definitions and theorems          |
| rg_gsm_symbolic           | reasoning-gym gsm_symbolic + worked solution | synthetic math word problems (GSM8K-test templated: contamination demo; |
|                           | (templates held out for phase 4's proxy are never used) | the offline eval proxy's templates excluded) |
| rg_math_drills            | reasoning-gym arithmetic/algebra generators  | synthetic math data                        |
| deepmind_mathematics      | mathematics-dataset (DeepMind) generator     | synthetic school math                      |
| math_docstrings_seed      | docstrings of sympy.functions/integrals/...,  | code using math packages (classifier seed)  |
|                           | scipy.special (math by construction)         |                                            |
| math_package_docstrings   | sympy / numpy / scipy docstrings (the rest)  | code that uses math packages (a mixed pool: |
|                           |                                              | I/O and plumbing docstrings are not math)  |
| stdlib_prose              | docstrings of non-math stdlib modules        | non-math web text (classifier negatives)   |

Every generator is deterministic in ``seed``; documents carry the package, generator and original id.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import random
import re
import warnings
from typing import Iterator


class SourceError(ValueError):
    """A source that cannot be read or yields nothing; the message names it and says what to do."""


def doc_id(source: str, original_id) -> str:
    """Stable, unique-per-source id (short hash keeps ids readable whatever the original id looks like)."""
    h = hashlib.sha1(f"{source}\x00{original_id}".encode()).hexdigest()[:12]
    return f"{source}-{h}"


# reasoning-gym 0.1.25's polynomial_multiplication is left out: its text changes between processes for the
# same seed (it depends on Python's per-process hash randomisation), which made demo corpora irreproducible.
RG_DRILLS = ["basic_arithmetic", "simple_equations", "fraction_simplification", "prime_factorization",
             "polynomial_equations", "gcd", "lcm", "complex_arithmetic", "simple_integration",
             "decimal_arithmetic", "count_primes"]
# Modules that are mathematics by construction: their docstrings seed the classifier as positives, so that
# "docstring style" appears on both sides (stdlib docstrings are the negatives) and the model learns content.
MATH_SEED_MODULES = ["sympy.functions", "sympy.integrals", "sympy.series", "sympy.ntheory", "scipy.special",
                     "sympy.polys.polytools"]
# The pool the classifier recalls from: math packages at large, including their I/O and plumbing docstrings.
MATH_PACKAGES = ["sympy", "sympy.matrices", "sympy.solvers", "sympy.combinatorics.permutations", "sympy.stats",
                 "numpy", "numpy.linalg", "numpy.fft", "numpy.polynomial.polynomial", "numpy.random",
                 "scipy.integrate", "scipy.optimize", "scipy.stats", "scipy.linalg", "scipy.io", "numpy.lib.npyio"]
PROSE_MODULES = ["email", "email.message", "http.client", "http.server", "urllib.request", "logging",
                 "logging.handlers", "argparse", "asyncio", "json", "csv", "sqlite3", "shutil", "subprocess",
                 "tarfile", "zipfile", "smtplib", "ftplib", "imaplib", "mailbox", "xml.dom.minidom",
                 "xml.etree.ElementTree", "html.parser", "tkinter", "socketserver", "threading", "multiprocessing",
                 "pathlib", "tempfile", "unittest", "doctest", "pdb", "pickle", "shelve", "configparser",
                 "gettext", "locale", "webbrowser", "wave", "mimetypes", "textwrap", "difflib", "pprint", "string",
                 "calendar", "codecs", "getpass", "glob", "gzip", "io", "optparse", "queue", "sched", "selectors",
                 "socket", "ssl", "trace", "traceback", "typing", "uuid", "venv", "warnings", "weakref", "zipapp"]
_AT = re.compile(r"@@(.+?)@@", re.S)

EMBEDDED: dict[str, dict] = {}


def _register(name: str, package: str, stands_for: str):
    def deco(fn):
        EMBEDDED[name] = {"fn": fn, "package": package, "stands_for": stands_for}
        return fn
    return deco


def describe() -> list[dict]:
    """Name, package and paper source of every embedded source (for the notebook's table)."""
    return [{"source": k, "package": v["package"], "stands_for": v["stands_for"]} for k, v in EMBEDDED.items()]


def iter_embedded(name: str, max_docs: int | None = None, seed: int = 0) -> Iterator[dict]:
    if name not in EMBEDDED:
        raise SourceError(f"unknown embedded source {name!r}; known: {', '.join(EMBEDDED)}")
    info = EMBEDDED[name]
    try:
        yield from info["fn"](max_docs or 10**9, seed)
    except ImportError as e:
        raise SourceError(f"embedded source {name!r} needs the PyPI package {info['package']!r} "
                          f"(pip install '{info['package']}'; the 'offline' extra installs it): {e}") from None


def champ_math(s: str) -> str:
    """champ marks math inline as ``@@…@@``; turn it into ``$…$`` so it reads like LaTeX text."""
    return _AT.sub(lambda m: f"${m.group(1).strip()}$", s)


def _champ():
    import champ_dataset
    return champ_dataset.load("v0")


@_register("champ_solutions", "champ-dataset", "textbook / competition worked solutions")
def _champ_solutions(n: int, seed: int):
    ds = _champ()
    keys = sorted(ds.problems)
    random.Random(seed).shuffle(keys)
    for k in keys[:n]:
        p = ds.problems[k]
        steps = "\n".join(f"{i}. {champ_math(s._raw_text)}" for i, s in enumerate(p.solution.steps, 1))
        text = (f"Problem ({p.category}). {champ_math(p._raw_text)}\n\nSolution.\n{steps}\n\n"
                f"Answer: {champ_math(p._raw_answer)}")
        yield {"id": doc_id("champ_solutions", k), "text": text, "source": "champ_solutions",
               "meta": {"package": "champ-dataset", "generator": "problems", "original_id": k,
                        "category": p.category}}


@_register("champ_concepts", "champ-dataset", "textbook definitions and theorems")
def _champ_concepts(n: int, seed: int):
    ds = _champ()
    items = [(k, "concept", c) for k, c in ds.concepts.items()] + [(k, "hint", h) for k, h in ds.hints.items()]
    items.sort(key=lambda t: t[0])
    random.Random(seed).shuffle(items)
    for k, kind, c in items[:n]:
        head = f"{c.name}. " if getattr(c, "name", None) else ""
        cat = f" ({c.category})" if getattr(c, "category", None) else ""
        text = f"{kind.capitalize()}{cat}: {head}{champ_math(c._raw_text)}"
        yield {"id": doc_id("champ_concepts", k), "text": text, "source": "champ_concepts",
               "meta": {"package": "champ-dataset", "generator": kind + "s", "original_id": k}}


# The offline GSM8K proxy of phase 4 (``evaluate.benchmarks``) is generated ONLY from these gsm_symbolic templates
# (generator indices), and the training source below never uses them: proxy and training corpus are disjoint by
# construction (different problem templates, so no shared question or solution text), checked by
# tests/test_eval_proxy.py. Every 5th template of reasoning-gym 0.1.25's list is held out (~16 of ~80).
GSM_SYMBOLIC_HELDOUT = frozenset(range(0, 100, 5))
_RG_SUFFIX = " Give the result as your final answer. Do not include units."


def gsm_symbolic_items(n: int, seed: int, heldout: bool):
    """reasoning-gym gsm_symbolic items from the held-out templates (``heldout=True``, the evaluation proxy) or
    from all the others (training). Deterministic in ``seed``; item i carries its template index, its index in
    the generated pool and that pool's seed (``pool_seed``): when the first pool runs short, the rest comes from a
    pool with another seed whose indices start at 0 again, so (pool_seed, index) — not (seed, index) — names an
    item uniquely."""
    import reasoning_gym as rg
    size = max(4 * n, 64)
    ds = rg.create_dataset("gsm_symbolic", size=size, seed=seed)
    out = 0
    for i in range(size):
        if (ds.task_indices[i] in GSM_SYMBOLIC_HELDOUT) != heldout:
            continue
        it = ds[i]
        # reasoning-gym appends one instruction to every question; it is not part of the problem, and as shared
        # boilerplate it would be the only text proxy and training corpus have in common
        it["question"] = it["question"].replace(_RG_SUFFIX, "").strip()
        it["metadata"]["template"] = ds.task_indices[i]
        it["metadata"]["index"] = i
        it["metadata"]["pool_seed"] = seed
        yield it
        out += 1
        if out >= n:
            return
    if out < n:      # pool too small (held-out templates are a fifth of all): a further pool, the next seed block
        yield from gsm_symbolic_items(n - out, seed + 10**6, heldout)


@_register("rg_gsm_symbolic", "reasoning-gym", "synthetic math word problems (GSM8K-test templates)")
def _rg_gsm(n: int, seed: int):
    for it in gsm_symbolic_items(n if n < 10**8 else 1000, seed, heldout=False):
        i = it["metadata"]["index"]
        ps = it["metadata"]["pool_seed"]
        cot = it["metadata"].get("answer_cot", "")
        text = f"Question: {it['question']}\n\nSolution: {cot}\n\nThe answer is {it['answer']}."
        yield {"id": doc_id("rg_gsm_symbolic", f"{ps}-{i}"), "text": text, "source": "rg_gsm_symbolic",
               "meta": {"package": "reasoning-gym", "generator": "gsm_symbolic", "seed": seed, "index": i,
                        "template": it["metadata"]["template"], "original_id": f"gsm_symbolic-{ps}-{i}"}}


@_register("rg_math_drills", "reasoning-gym", "synthetic math data (drills with answers)")
def _rg_drills(n: int, seed: int):
    import reasoning_gym as rg
    n = n if n < 10**8 else 1200
    per = max(1, -(-n // len(RG_DRILLS)))
    sets = {g: rg.create_dataset(g, size=per, seed=seed) for g in RG_DRILLS}
    out = 0
    for i in range(per):                 # interleave generators so a small max_docs still mixes them
        for g, ds in sets.items():
            if out >= n:
                return
            it = ds[i]
            sol = it["metadata"].get("solution")
            text = f"Problem: {it['question'].strip()}\n" + (f"Solution: {sol}\n" if isinstance(sol, str) else "") \
                + f"Answer: {it['answer']}"
            out += 1
            yield {"id": doc_id("rg_math_drills", f"{g}-{seed}-{i}"), "text": text, "source": "rg_math_drills",
                   "meta": {"package": "reasoning-gym", "generator": g, "seed": seed, "index": i,
                            "original_id": f"{g}-{seed}-{i}"}}


@_register("deepmind_mathematics", "mathematics-dataset", "synthetic school math (DeepMind generator)")
def _deepmind(n: int, seed: int):
    try:
        from mathematics_dataset.modules import modules
    except ImportError as e:
        raise SourceError(f"embedded source 'deepmind_mathematics' cannot import mathematics_dataset with the "
                          f"installed sympy ({e}); the package targets old sympy releases. Drop it from "
                          f"`sources` or use rg_math_drills (the same kind of data)") from None
    import numpy as np
    np.random.seed(seed)
    random.seed(seed)
    flat = []

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, prefix + k + "__")
            else:
                flat.append((prefix + k, v))
    walk(modules.train(lambda r: r))
    count = 0
    while count < n:
        for mod, fn in flat:
            if count >= n:
                return
            p = fn()
            count += 1
            yield {"id": doc_id("deepmind_mathematics", f"{mod}-{seed}-{count}"),
                   "text": f"Question: {p.question}\nAnswer: {p.answer}", "source": "deepmind_mathematics",
                   "meta": {"package": "mathematics-dataset", "generator": mod, "original_id": f"{mod}-{count}"}}


def _docstrings(modnames: list[str], min_chars: int = 200, methods: bool = False, exclude: set | None = None):
    """(qualified name, module, cleaned docstring) of public functions/classes (and, with ``methods``, their
    public methods) of each module, once each; objects whose id is in ``exclude`` are skipped."""
    seen = set(exclude or ())
    for mn in modnames:
        try:
            mod = importlib.import_module(mn)
        except ImportError:
            continue
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            try:
                obj = getattr(mod, attr)
            except Exception:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)
                    or type(obj).__name__ in ("ufunc", "_ArrayFunctionDispatcher")):
                continue
            with warnings.catch_warnings():            # typing.io & co. warn when their docs are read
                warnings.simplefilter("ignore")
                doc = inspect.getdoc(obj)
            key = id(obj)
            if not doc or len(doc) < min_chars or key in seen:
                continue
            seen.add(key)
            yield f"{mn}.{attr}", mn, doc
            if methods and inspect.isclass(obj):
                for m in sorted(vars(obj)):
                    fn = vars(obj)[m]
                    mdoc = inspect.getdoc(fn) if inspect.isfunction(fn) and not m.startswith("_") else None
                    if mdoc and len(mdoc) >= min_chars // 2 and id(fn) not in seen:
                        seen.add(id(fn))
                        yield f"{mn}.{attr}.{m}", mn, mdoc


def _object_ids(modnames: list[str]) -> set:
    out = set()
    for mn in modnames:
        try:
            mod = importlib.import_module(mn)
        except ImportError:
            continue
        out.update(id(getattr(mod, a, None)) for a in dir(mod) if not a.startswith("_"))
    return out


def _docstring_source(name: str, modnames: list[str], package_of, n: int, seed: int, methods: bool = False,
                      exclude: set | None = None):
    items = list(_docstrings(modnames, methods=methods, exclude=exclude))
    if not items:
        raise ImportError(f"none of {', '.join(modnames[:4])}… could be imported")
    random.Random(seed).shuffle(items)
    for qual, mn, doc in items[:n]:
        yield {"id": doc_id(name, qual), "text": f"{qual}\n\n{doc}", "source": name,
               "meta": {"package": package_of(mn), "module": mn, "original_id": qual}}


@_register("math_docstrings_seed", "sympy scipy", "code that uses math packages (classifier seed)")
def _math_seed_docs(n: int, seed: int):
    yield from _docstring_source("math_docstrings_seed", MATH_SEED_MODULES, lambda m: m.split(".")[0], n, seed)


@_register("math_package_docstrings", "sympy numpy scipy", "code that uses math packages (pool to classify)")
def _math_docs(n: int, seed: int):
    yield from _docstring_source("math_package_docstrings", MATH_PACKAGES, lambda m: m.split(".")[0], n, seed,
                                 exclude=_object_ids(MATH_SEED_MODULES))


@_register("stdlib_prose", "python stdlib", "non-math text (classifier negatives)")
def _prose(n: int, seed: int):
    yield from _docstring_source("stdlib_prose", PROSE_MODULES, lambda m: "python-stdlib", n, seed, methods=True)
