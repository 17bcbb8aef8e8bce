"""Evaluation protocols: the exact prompt, stop strings and scoring rule of a published setup, chosen per run.

Why several: numbers are only comparable under the same protocol. ``paper`` is MathCoder2's 4-shot setup with
exemplars written for this kit; the others reproduce prompts people compare against:

| name                | prompt                                   | shots | exemplars from                      | scored by |
|---------------------|------------------------------------------|-------|-------------------------------------|-----------|
| paper               | Question: q / Answer: (kit exemplars)    | 4     | ``fewshot.EXEMPLARS``               | kit extraction + math-verify |
| minerva_math        | Problem: / Solution: ... Final Answer    | 4     | lm-eval's minerva_math task file    | kit extraction + math-verify |
| lm_eval_gsm8k_cot   | Q: q / A: (chain of thought)             | 8     | lm-eval's gsm8k-cot task file       | lm-eval strict-match (and flexible-extract) |
| lm_eval_gsm8k       | Question: q / Answer: ... #### N         | 5     | GSM8K train (Hub) or ``fewshot_file`` | lm-eval strict-match (and flexible-extract) |
| mmlu_5shot          | MMLU header, q, A. .. D., Answer:        | 5     | MMLU dev (Hub) or ``fewshot_file``, else kit exemplars | first line's letter |

Each protocol is ONE registered entry (``ProtocolSpec``, as a task in lm-evaluation-harness): question template,
header, exemplar source, stop strings, delimiters, shot limits and scorer (``Scorer``: answer extraction and
verdict). The harness, the notebook's prompt display and the NLL probe read the entry; nothing branches on a
protocol's name. Add one with ``register_protocol(ProtocolSpec(...))`` (and ``register_scorer`` for a new rule).

The lm-eval exemplars are read at run time from the installed, pinned ``lm-eval`` package (``mathcode[bench]``),
so the kit never carries a drifting copy of them. ``chat=True`` renders the same shots as alternating
user/assistant turns through the model's chat template (instruct models).
"""
from __future__ import annotations

import ast
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mathcode.evaluate.benchmarks import LETTERS, BenchmarkError, Item
from mathcode.evaluate.equivalence import is_equivalent
from mathcode.evaluate.extract import extract_answer
from mathcode.evaluate import fewshot as F


class ProtocolError(ValueError):
    """Unknown protocol or missing exemplar source; the message says what to install or pass."""


@dataclass
class Shot:
    question: str          # user-side text of the exemplar (already formatted)
    target: str            # the answer text that follows


@dataclass(frozen=True)
class Scorer:
    """How a completion is turned into a verdict: ``score(item, completion, ocw_rel_tol) -> row fields``
    (``extracted``, ``extraction``, ``correct``, ...); ``vote_by_equivalence``: with several samples the majority
    answer is judged by the kit's equivalence (True) or counts only when a sample with that answer was correct."""
    name: str
    score: Callable[[Item, str, float], dict]
    vote_by_equivalence: bool = False


@dataclass(frozen=True)
class ProtocolSpec:
    """One registered evaluation protocol: everything the harness needs to prompt and score a run.

    ``question(item)`` is the item's text in the protocol's template; ``header(item)`` what precedes the shots;
    ``shots(protocol, item, family, index)`` the exemplars (a ``Protocol`` carries the run's shot count,
    ``fewshot_file`` and cache); ``stop`` the stop strings; ``scorer`` the name of a registered ``Scorer``;
    ``max_shots`` the most exemplars the source has (None: as many as it holds); ``exemplar_source`` how tables
    name the shots' origin (None: the ``fewshot_file``, or set when the exemplars are read)."""
    name: str
    n_shots: int
    stop: tuple[str, ...]
    question: Callable[[Item], str]
    shots: Callable[["Protocol", Item, str, int], list[Shot]]
    scorer: str = "kit"
    header: Callable[[Item], str] = field(default=lambda item: "")
    target_delimiter: str = " "
    shot_delimiter: str = "\n\n"
    max_shots: int | None = None
    exemplar_source: str | None = None
    description: str = ""


@dataclass
class Protocol:
    """A protocol as used in one run: the registered entry (``spec``) with the run's shot count and exemplar
    file. ``settings()`` is what the resume key hashes."""
    name: str
    n_shots: int
    stop: list[str]
    target_delimiter: str = " "
    shot_delimiter: str = "\n\n"
    scorer: str = "kit"                       # the name of a registered Scorer (SCORERS)
    fewshot_file: str | None = None
    exemplar_source: str = ""                 # shown in tables: where the shots came from
    _cache: dict = field(default_factory=dict, repr=False)
    spec: ProtocolSpec | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.spec is None:
            self.spec = _entry(self.name)

    # --- formatting of one question ------------------------------------------------------------------
    def format_question(self, item: Item) -> str:
        return self.spec.question(item)

    def header(self, item: Item) -> str:
        return self.spec.header(item)

    # --- exemplars ----------------------------------------------------------------------------------
    def shots(self, item: Item, family: str, index: int = 0) -> list[Shot]:
        if self.n_shots == 0:
            return []
        return self.spec.shots(self, item, family, index)

    # --- scoring ------------------------------------------------------------------------------------
    @property
    def scoring(self) -> Scorer:
        return get_scorer(self.scorer)

    def score(self, item: Item, completion: str, ocw_rel_tol: float = 0.0) -> dict:
        return self.scoring.score(item, completion, ocw_rel_tol)

    # --- the prompt ---------------------------------------------------------------------------------
    def build(self, item: Item, family: str, index: int = 0) -> str:
        """The exact text the model continues (completion mode)."""
        parts = [s.question + self.target_delimiter + s.target for s in self.shots(item, family, index)]
        return self.header(item) + self.shot_delimiter.join(parts + [self.format_question(item)])

    def build_chat(self, item: Item, family: str, index: int = 0) -> list[dict]:
        """The same shots as alternating user/assistant turns (instruct models, the model's chat template)."""
        msgs = []
        head = self.header(item)
        for s in self.shots(item, family, index):
            msgs += [{"role": "user", "content": head + s.question}, {"role": "assistant", "content": s.target}]
            head = ""
        msgs.append({"role": "user", "content": head + self.format_question(item)})
        return msgs

    def settings(self) -> dict:
        return {"protocol": self.name, "n_shots": self.n_shots, "stop": self.stop, "scorer": self.scorer,
                "fewshot_file": self.fewshot_file}


# --- exemplar sources (an entry's ``shots``) -------------------------------------------------------------------
def kit_shots(p: Protocol, item: Item, family: str, index: int = 0) -> list[Shot]:
    """The kit-written exemplars of the item's family (``fewshot.EXEMPLARS``)."""
    return [Shot(F.format_question(ex), sol) for ex, sol in F.exemplar_items(family)[:p.n_shots]]


def lm_eval_task_shots(p: Protocol, item: Item, family: str, index: int = 0) -> list[Shot]:
    """The fixed exemplars of lm-eval's own task file (read once per run from the installed package)."""
    if "lm" not in p._cache:
        p._cache["lm"] = lm_eval_exemplars(p.name)
    return p._cache["lm"][:p.n_shots]


def gsm8k_train_shots(p: Protocol, item: Item, family: str, index: int = 0) -> list[Shot]:
    """lm-eval's gsm8k: ``n_shots`` GSM8K train rows drawn per item with lm-eval's fewshot_seed."""
    pool = _gsm8k_pool(p)
    rng = random.Random(1234 + index)           # lm-eval's fewshot_seed; per item, without the item
    pick = [r for r in rng.sample(pool, min(len(pool), p.n_shots + 1)) if r["question"] != item.question]
    return [Shot(f"Question: {r['question'].strip()}\nAnswer:", r["answer"]) for r in pick[:p.n_shots]]


def _gsm8k_pool(p: Protocol) -> list[dict]:
    what = "gsm8k"
    if what in p._cache:
        return p._cache[what]
    rows = None
    if p.fewshot_file:
        rows = _read_fewshot_file(p.fewshot_file)
    else:
        try:
            from datasets import load_dataset
            rows = [dict(r) for r in load_dataset("openai/gsm8k", "main", split="train")]
            p.exemplar_source = "openai/gsm8k train (Hub)"
        except Exception as e:        # offline, no cache
            raise ProtocolError(
                f"protocol {p.name!r} draws its 5 shots from the GSM8K train split, which could not be loaded "
                f"({type(e).__name__}); pass fewshot_file=<JSONL with question/answer rows in the Hub layout "
                f"'... #### N'> or use protocol 'lm_eval_gsm8k_cot' (exemplars ship with lm-eval)") from None
    p._cache[what] = rows
    return rows


def mmlu_dev_shots(p: Protocol, item: Item, family: str, index: int = 0) -> list[Shot]:
    """MMLU's dev split of the item's subject (Hub or ``fewshot_file``), else the kit's choice exemplars."""
    subj = str(item.meta.get("subject") or "")
    key = f"mmlu:{subj}"
    if key not in p._cache:
        rows = None
        if p.fewshot_file:
            rows = [r for r in _read_fewshot_file(p.fewshot_file) if not subj or r.get("subject", subj) == subj]
            p.exemplar_source = p.fewshot_file
        else:
            try:
                from datasets import load_dataset
                ds = load_dataset("cais/mmlu", subj, split="dev")
                rows = [{"question": r["question"], "choices": r["choices"], "answer": LETTERS[int(r["answer"])]}
                        for r in ds]
                p.exemplar_source = "cais/mmlu dev (Hub)"
            except Exception:
                rows = None
        if not rows:                      # offline: the kit's written multiple-choice exemplars, labelled
            rows = [{"question": ex.question, "choices": ex.choices, "answer": ex.answer}
                    for ex, _ in F.exemplar_items("choice")]
            p.exemplar_source = "kit-written choice exemplars (MMLU dev split unavailable offline)"
        p._cache[key] = rows
    out = []
    for r in p._cache[key][:p.n_shots]:
        it = Item("shot", "", r["question"], str(r["answer"]), "choice", choices=[str(c) for c in r["choices"]])
        out.append(Shot(p.format_question(it), str(r["answer"])))
    return out


def _read_fewshot_file(path) -> list[dict]:
    from mathcode.evaluate.custom import resolve_user_path
    f = resolve_user_path(path)
    rows = []
    for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BenchmarkError(f"{f}:{n}: malformed JSON ({e.msg}); one exemplar object per line") from None
    if not rows:
        raise BenchmarkError(f"{f}: no exemplars")
    return rows


def _lm_eval_tasks_dir() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ProtocolError("this protocol reads its published exemplars from lm-eval's task files: "
                            "pip install 'lm-eval==0.4.13' (or pip install -e '.[bench]'), or use protocol='paper'")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _gsm8k_cot_task_exemplars(tasks: Path) -> list[Shot]:
    import yaml
    cfg = yaml.safe_load((tasks / "gsm8k" / "gsm8k-cot.yaml").read_text())
    return [Shot(f"Q: {s['question'].strip()}\nA:", s["target"]) for s in cfg["fewshot_config"]["samples"]]


def _minerva_math_task_exemplars(tasks: Path) -> list[Shot]:
    src = (tasks / "minerva_math" / "utils.py").read_text()
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "list_fewshot_samples")
    ret = next(n for n in ast.walk(fn) if isinstance(n, ast.Return))
    return [Shot(f"Problem:\n{s['problem']}\n\nSolution:", s["solution"]) for s in ast.literal_eval(ret.value)]


# which lm-eval task file holds a protocol's fixed exemplars (read by ``lm_eval_task_shots``)
LM_EVAL_TASK_EXEMPLARS: dict[str, Callable[[Path], list[Shot]]] = {
    "lm_eval_gsm8k_cot": _gsm8k_cot_task_exemplars,
    "minerva_math": _minerva_math_task_exemplars,
}


def lm_eval_exemplars(protocol: str) -> list[Shot]:
    """The few-shot exemplars of lm-eval's own task config (gsm8k-cot YAML; minerva_math utils.py)."""
    reader = LM_EVAL_TASK_EXEMPLARS.get(protocol)
    if reader is None:
        raise ProtocolError(protocol)
    return reader(_lm_eval_tasks_dir())


# --- scorers ----------------------------------------------------------------------------------------------------
def rel_tol_for(item: Item, ocw_rel_tol: float = 0.0) -> float:
    """The benchmark's numeric tolerance: a custom benchmark's own ``rel_tol``, else ``ocw_rel_tol`` for OCW."""
    if item.meta.get("rel_tol") is not None:
        return float(item.meta["rel_tol"])
    return ocw_rel_tol if item.benchmark == "ocw" else 0.0


def kit_score(item: Item, completion: str, ocw_rel_tol: float = 0.0) -> dict:
    """The kit's answer extraction (``extract``) and math-verify equivalence (``equivalence``)."""
    pred, method = extract_answer(completion, item.kind, item.choices)
    ok = is_equivalent(pred, item.answer, item.kind, rel_tol=rel_tol_for(item, ocw_rel_tol))
    return {"extracted": pred, "extraction": method, "correct": bool(ok)}


def _lm_eval_gsm8k_score(cot: bool):
    def score(item: Item, completion: str, ocw_rel_tol: float = 0.0) -> dict:
        s = lm_eval_gsm8k_scores(completion, item.answer, cot=cot)
        kit = kit_score(item, completion, ocw_rel_tol)
        return {"extracted": s["strict"], "extraction": "lm-eval strict-match", "correct": bool(s["strict_match"]),
                "flexible_extract": bool(s["flexible_extract"]), "extracted_flexible": s["flexible"],
                "correct_kit": kit["correct"], "extracted_kit": kit["extracted"]}
    return score


def mmlu_score(item: Item, completion: str, ocw_rel_tol: float = 0.0) -> dict:
    """The letter on the first line (MMLU's format) for choice items; the kit's extraction otherwise."""
    if item.kind == "choice":
        letter = mmlu_letter(completion, len(item.choices or []))
        if letter is not None:
            return {"extracted": letter, "extraction": "first-line-letter", "correct": letter == item.answer}
    return kit_score(item, completion, ocw_rel_tol)


SCORERS: dict[str, Scorer] = {}


def register_scorer(scorer: Scorer) -> Scorer:
    SCORERS[scorer.name] = scorer
    return scorer


def get_scorer(name: str) -> Scorer:
    if name not in SCORERS:
        raise ProtocolError(f"scorer {name!r}: use one of {', '.join(SCORERS)}")
    return SCORERS[name]


register_scorer(Scorer("kit", kit_score, vote_by_equivalence=True))
register_scorer(Scorer("lm_eval_gsm8k", _lm_eval_gsm8k_score(cot=False)))
register_scorer(Scorer("lm_eval_gsm8k_cot", _lm_eval_gsm8k_score(cot=True)))
register_scorer(Scorer("mmlu", mmlu_score))


# --- the registry -----------------------------------------------------------------------------------------------
PROTOCOLS: dict[str, ProtocolSpec] = {}       # name -> entry; ``tuple(PROTOCOLS)`` are the valid names


def register_protocol(spec: ProtocolSpec) -> ProtocolSpec:
    """Add (or replace) a protocol; its scorer must be registered (``register_scorer``)."""
    get_scorer(spec.scorer)
    PROTOCOLS[spec.name] = spec
    return spec


def _entry(name: str) -> ProtocolSpec:
    if name not in PROTOCOLS:
        raise ProtocolError(f"parameter protocol={name!r}: use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def get_protocol(name: str = "paper", n_shots: int | None = None, fewshot_file: str | None = None) -> Protocol:
    """A protocol by name; ``n_shots`` overrides its published shot count (0 = zero-shot)."""
    spec = _entry(name)
    k = spec.n_shots
    if n_shots is not None and n_shots >= 0:
        if spec.max_shots is not None and n_shots > spec.max_shots:
            raise ProtocolError(f"n_shots={n_shots}: protocol {name!r} has {spec.max_shots} written exemplars per "
                                f"family; use 0..{spec.max_shots}")
        k = int(n_shots)
    p = Protocol(name, k, list(spec.stop), target_delimiter=spec.target_delimiter,
                 shot_delimiter=spec.shot_delimiter, scorer=spec.scorer, fewshot_file=fewshot_file or None, spec=spec)
    p.exemplar_source = spec.exemplar_source if spec.exemplar_source is not None else (fewshot_file or "")
    return p


def _mmlu_header(item: Item) -> str:
    subj = str(item.meta.get("subject") or "mathematics").replace("_", " ")
    return f"The following are multiple choice questions (with answers) about {subj}.\n\n"


def _mmlu_question(item: Item) -> str:
    opts = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(item.choices or []))
    return f"{item.question.strip()}{opts}\nAnswer:"


register_protocol(ProtocolSpec(
    "paper", n_shots=4, stop=tuple(F.STOP), question=F.format_question, shots=kit_shots, scorer="kit",
    target_delimiter=F.TARGET_DELIMITER, shot_delimiter=F.SHOT_DELIMITER, max_shots=4,
    exemplar_source="kit-written (mathcode.evaluate.fewshot)",
    description="MathCoder2's 4-shot setup, kit-written exemplars per family"))
register_protocol(ProtocolSpec(
    "minerva_math", n_shots=4, stop=("Problem:",), question=lambda it: f"Problem:\n{it.question.strip()}\n\nSolution:",
    shots=lm_eval_task_shots, scorer="kit", exemplar_source="lm-eval minerva_math",
    description="lm-eval's minerva_math prompt and exemplars"))
register_protocol(ProtocolSpec(
    "lm_eval_gsm8k_cot", n_shots=8, stop=("Q:", "</s>", "<|im_end|>"),
    question=lambda it: f"Q: {it.question.strip()}\nA:", shots=lm_eval_task_shots, scorer="lm_eval_gsm8k_cot",
    exemplar_source="lm-eval gsm8k-cot", description="lm-eval's gsm8k-cot task (8 fixed chain-of-thought shots)"))
register_protocol(ProtocolSpec(
    "lm_eval_gsm8k", n_shots=5, stop=("Question:", "</s>", "<|im_end|>"),
    question=lambda it: f"Question: {it.question.strip()}\nAnswer:", shots=gsm8k_train_shots,
    scorer="lm_eval_gsm8k", description="lm-eval's gsm8k task (5 shots drawn from GSM8K train per item)"))
register_protocol(ProtocolSpec(
    "mmlu_5shot", n_shots=5, stop=("\n", "</s>"), question=_mmlu_question, header=_mmlu_header,
    shots=mmlu_dev_shots, scorer="mmlu", description="MMLU's 5-shot multiple-choice format"))


# --- lm-eval-compatible scoring (the kit's own implementation of the documented rules) -----------------------
_IGNORE = [r",", r"\$", r"(?s).*#### ", r"\.$"]


def _lm_norm(s: str) -> str:
    for pat in _IGNORE:
        s = re.sub(pat, "", s)
    return s.lower()


def lm_eval_gsm8k_scores(completion: str, gold: str, cot: bool) -> dict:
    """strict-match ("The answer is N." for CoT, "#### N" otherwise: first match) and flexible-extract (last
    number-like token), each compared as lm-eval's exact_match with its regexes_to_ignore and ignore_case."""
    strict_pat = r"The answer is (\-?[0-9\.\,]+)." if cot else r"#### (\-?[0-9\.\,]+)"
    m = re.findall(strict_pat, completion)
    strict = m[0].strip() if m else "[invalid]"
    flex_all = re.findall(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", completion)
    flex = next((g for g in flex_all[-1] if g), "[invalid]").strip() if flex_all else "[invalid]"
    g = _lm_norm(str(gold))
    return {"strict": strict, "flexible": flex,
            "strict_match": _lm_norm(strict) == g, "flexible_extract": _lm_norm(flex) == g}


def mmlu_letter(completion: str, n_choices: int) -> str | None:
    """The letter on the first line of an MMLU-format answer (" B", "B. 12", "(B)")."""
    first = (completion or "").split("\n")[0].strip()
    m = re.match(rf"\(?([{LETTERS[:n_choices]}])(?![A-Za-z])", first)
    return m.group(1) if m else None
