"""Custom benchmarks from any JSON / JSONL / CSV file, without code.

Why general: public math benchmarks come in many layouts (SVAMP's Body + Question, AQuA's "A)21" options,
MathQA's "a ) 38 , b ) 27.6" option string, list answers, "#### N" answers, ``\\boxed{}`` answers, a JSON
object holding the list). The format is sniffed from the content, not the extension; fields are mapped by
name (dotted paths reach nested keys) or guessed from common names; the question may be a template over
several fields (``"{Body} {Question}"``); the free-form answer kind (number or math), the numeric tolerance and
the exemplar family are decided once per benchmark, never per item (only an item that carries options is
scored as multiple choice). Every error is a ``BenchmarkError`` naming the file and line.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mathcode.evaluate.benchmarks import LETTERS, BenchmarkError, Item, last_boxed, subset

ROLES = ("question", "answer", "choices", "solution", "id", "level", "subject")
GUESS = {
    "question": ("question", "problem", "Problem", "Question", "query", "input", "prompt", "sQuestion", "text"),
    "answer": ("answer", "Answer", "final_answer", "target", "correct", "label", "gold", "lSolutions", "output",
               "ans", "correct_answer", "Correct Answer", "final"),
    "choices": ("choices", "options", "Options", "option", "candidates"),
    "solution": ("solution", "Solution", "rationale", "Rationale", "cot", "explanation", "reasoning"),
    "id": ("id", "ID", "idx", "unique_id", "qid", "problem_id"),
    "level": ("level", "Level", "difficulty"),
    "subject": ("subject", "type", "topic", "category", "Type"),
}
KINDS = ("auto", "number", "math", "choice")
FAMILIES = ("gsm8k", "math", "ocw", "choice")
_NUM = re.compile(r"^-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?$|^-?\.\d+$")


@dataclass
class CustomBenchmark:
    """One custom benchmark of a run (several may be listed). ``fields``: role -> key, dotted path or, for
    the question, a template such as ``"{Body} {Question}"``; unmapped roles are guessed from common names."""
    file: str
    name: str = "custom"
    fields: dict = field(default_factory=dict)
    kind: str = "auto"                 # auto | number | math | choice (decided for the whole file)
    rel_tol: float = 0.0               # numeric tolerance of this benchmark (0 = exact)
    family: str = ""                   # exemplar family: gsm8k | math | ocw | choice (default from kind)
    limit: int | None = None

    @classmethod
    def from_param(cls, p) -> "CustomBenchmark":
        if isinstance(p, CustomBenchmark):
            return p
        if isinstance(p, str):
            return cls(file=p, name=Path(p).stem)
        if not isinstance(p, dict) or not p.get("file"):
            raise BenchmarkError(f"parameter custom_benchmarks: each entry needs at least {{'file': PATH}} "
                                 f"(optional name, fields, kind, rel_tol, family, limit); got {p!r}")
        bad = set(p) - {"file", "name", "fields", "kind", "rel_tol", "family", "limit"}
        if bad:
            raise BenchmarkError(f"parameter custom_benchmarks: unknown keys {sorted(bad)} in {p!r}; allowed: file, "
                                 f"name, fields, kind, rel_tol, family, limit")
        return cls(**{"name": Path(p["file"]).stem, **p})


def resolve_user_path(path) -> Path:
    """A user-given file: absolute, or relative to the directory the user ran from ($MATHCODE_CWD when the
    runner started us, else the current directory), then the project root; missing -> BenchmarkError."""
    from mathcode import paths
    p = Path(os.path.expanduser(str(path)))
    tried = []
    if p.is_absolute():
        tried = [p]
    else:
        for base in (os.environ.get("MATHCODE_CWD"), os.getcwd(), str(paths.project_root())):
            if base:
                tried.append((Path(base) / p).resolve())
    for t in tried:
        if t.is_file():
            return t
    raise BenchmarkError(f"benchmark file {str(path)!r} not found (looked at: {', '.join(map(str, dict.fromkeys(tried)))});"
                         f" give an absolute path or one relative to the directory you run from")


# --- reading rows -----------------------------------------------------------------------------------------------
def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _array_elements(f: Path, text: str, start: int):
    """(line, value) for each element of the JSON array starting at ``text[start] == '['``."""
    dec = json.JSONDecoder()
    i = start + 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            raise BenchmarkError(f"{f}:{_line_of(text, n)}: JSON array is not closed (file cut short?)")
        if text[i] == "]":
            return
        try:
            val, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise BenchmarkError(f"{f}:{_line_of(text, e.pos)}: not valid JSON ({e.msg}); fix that line") from None
        yield _line_of(text, i), val
        i = end


def read_rows(f: Path):
    """Yield (line number, row dict) from JSON (a list, or an object holding one list), JSONL, CSV/TSV or
    Parquet, recognised by content (for Parquet the "line" is the row number)."""
    with open(f, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pandas as pd
        for n, row in enumerate(pd.read_parquet(f).to_dict("records"), 1):
            yield n, {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in row.items()}
        return
    try:
        text = f.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BenchmarkError(f"{f}: not a text file (JSON, JSONL, CSV) nor Parquet") from None
    s = text.lstrip()
    if not s:
        raise BenchmarkError(f"{f}: the file is empty")
    off = len(text) - len(s)
    if s[0] == "[":
        rows = _array_elements(f, text, off)
    elif s[0] == "{":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None                          # several objects: JSONL
        if isinstance(whole, dict) and not _looks_like_item(whole):
            keys = [k for k, v in whole.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if len(keys) != 1:
                raise BenchmarkError(f"{f}: a JSON object must hold exactly one list of items (found lists under "
                                     f"{keys or 'no key'}); write a JSON list or JSONL instead")
            m = re.search(r'"%s"\s*:\s*\[' % re.escape(keys[0]), text)
            rows = _array_elements(f, text, m.end() - 1) if m else ((0, r) for r in whole[keys[0]])
        else:
            rows = _jsonl(f, text)
    else:
        rows = _csv(f, text)
    for line, row in rows:
        if not isinstance(row, dict):
            raise BenchmarkError(f"{f}:{line}: expected an object per item, got {type(row).__name__}")
        yield line, row


def _looks_like_item(d: dict) -> bool:
    return not any(isinstance(v, list) and v and isinstance(v[0], dict) for v in d.values())


def _jsonl(f: Path, text: str):
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchmarkError(f"{f}:{n}: malformed JSON line ({e.msg} at column {e.colno}); fix or remove "
                                 f"that line") from None


def _csv(f: Path, text: str):
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        raise BenchmarkError(f"{f}: neither JSON, JSONL nor CSV/TSV with a header row") from None
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    for row in reader:
        yield reader.line_num, row


# --- one row -> one item -------------------------------------------------------------------------------------------
def _get(row, dotted: str):
    cur = row
    for part in str(dotted).split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def _template(tpl: str, row: dict, f: Path, line: int) -> str:
    def sub(m):
        v = _get(row, m.group(1))
        if v is None:
            raise BenchmarkError(f"{f}:{line}: question template field {{{m.group(1)}}} is missing; fields there: "
                                 f"{', '.join(row)}")
        return str(v).strip()
    return re.sub(r"\{([^{}]+)\}", sub, tpl).strip()


def guess_fields(row: dict, fields: dict) -> dict:
    """Fill unmapped roles from common field names (first row decides, for the whole file)."""
    out = dict(fields)
    if "question" not in out:
        if "Body" in row and "Question" in row:              # SVAMP / ASDiv style: context + question
            out["question"] = "{Body} {Question}"
        elif "body" in row and "question" in row:
            out["question"] = "{body} {question}"
    for role, names in GUESS.items():
        if role not in out:
            hit = next((k for k in names if k in row), None)
            if hit is not None and hit not in out.values():
                out[role] = hit
    return out


_OPT_SPLIT = re.compile(r"(?:^|(?<=[\s,;]))\(?([A-Ja-j])\s*[).:]\s*")


def parse_options(s: str) -> tuple[str, list[str]] | None:
    """Split 'stem A) x B) y ...' / 'a ) 38 , b ) 27.6' / '(A) x (B) y' into (stem, options): the labels must
    run A, B, C, ... in order (at least 2), so an ordinary '(a)' in prose does not split."""
    ms = list(_OPT_SPLIT.finditer(s))
    for case in (str.upper, str.lower):
        seq = [m for m in ms if m.group(1) == case(m.group(1))]
        # find a run of labels A,B,C.. (in order) ending at the end of the string
        for start in range(len(seq)):
            run = []
            for m in seq[start:]:
                if m.group(1).upper() == LETTERS[len(run)]:
                    run.append(m)
            if len(run) >= 2 and run[0].group(1).upper() == "A":
                opts = [s[a.end():(b.start() if b is not None else len(s))].strip(" ,;\n")
                        for a, b in zip(run, run[1:] + [None])]
                if all(opts):
                    return s[:run[0].start()].strip(), opts
    return None


def strip_prefixes(choices: list) -> list[str]:
    """["A)21", "B)21.5", ...] -> ["21", "21.5", ...] when every option carries its own letter in order."""
    out = [str(c).strip() for c in choices]
    pref = [re.match(r"^\(?([A-Ja-j])\s*[).:]\s*", c) for c in out]
    if all(m and m.group(1).upper() == LETTERS[i] for i, m in enumerate(pref)):
        out = [c[m.end():].strip() for c, m in zip(out, pref)]
    return out


def _answer_text(v) -> str:
    if isinstance(v, list):
        vals = [_answer_text(x) for x in v]
        return vals[0] if len(vals) == 1 else ", ".join(vals)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _choice_letter(ans, choices: list[str]) -> str | None:
    if isinstance(ans, bool):
        return None
    if isinstance(ans, int):
        return LETTERS[ans] if 0 <= ans < len(choices) else None
    a = str(ans).strip()
    m = re.match(rf"^\(?([{LETTERS[:len(choices)]}{LETTERS[:len(choices)].lower()}])\s*[).:]?(?:\s|$)", a)
    if m:
        return m.group(1).upper()
    from mathcode.evaluate.extract import match_option_text
    letter, _ = match_option_text(a, choices)
    return letter


def _is_number(a: str) -> bool:
    return bool(_NUM.match(a.strip()))


def load_custom_benchmark(spec: CustomBenchmark, seed=None) -> list[Item]:
    """Items of one custom benchmark (see module doc); errors name the file and line."""
    f = resolve_user_path(spec.file)
    if spec.kind not in KINDS:
        raise BenchmarkError(f"custom benchmark {spec.name!r}: kind={spec.kind!r}; use one of {', '.join(KINDS)}")
    if spec.family and spec.family not in FAMILIES:
        raise BenchmarkError(f"custom benchmark {spec.name!r}: family={spec.family!r}; use one of {', '.join(FAMILIES)}")
    bad = set(spec.fields) - set(ROLES)
    if bad:
        raise BenchmarkError(f"custom benchmark {spec.name!r}: fields {sorted(bad)} are not roles; map these roles: "
                             f"{', '.join(ROLES)} (question may be a template like '{{Body}} {{Question}}')")
    raw, fields = [], None
    for line, row in read_rows(f):
        if fields is None:
            fields = guess_fields(row, spec.fields)
            for role in ("question", "answer"):
                if role not in fields:
                    raise BenchmarkError(f"{f}:{line}: no field for {role!r} (fields: {', '.join(row)}); map it, e.g. "
                                         f"fields={{'question': 'Problem', 'answer': 'Answer'}}")
        raw.append((line, row))
    if not raw:
        raise BenchmarkError(f"custom benchmark file {f} has no items")
    parsed = []
    for line, row in raw:
        qf = fields["question"]
        q = _template(qf, row, f, line) if "{" in qf else _get(row, qf)
        ans = _get(row, fields["answer"])
        if q is None or ans is None or (isinstance(ans, str) and not ans.strip()):
            which = "question" if q is None else "answer"
            raise BenchmarkError(f"{f}:{line}: field {fields[which]!r} (mapped to {which}) is missing or empty; "
                                 f"fields there: {', '.join(row)}. Fix fields= or the file")
        q = str(q).strip()
        choices = _get(row, fields["choices"]) if "choices" in fields else None
        if isinstance(choices, str):
            p = parse_options(choices)
            if p is None:
                raise BenchmarkError(f"{f}:{line}: cannot split options {choices[:80]!r} into 'A) .. B) ..' choices")
            choices = p[1]
        elif isinstance(choices, dict):                    # {"A": "..", "B": ".."}
            choices = [choices[k] for k in sorted(choices)]
        if choices is not None:
            choices = strip_prefixes(choices)
        sol = _get(row, fields["solution"]) if "solution" in fields else None
        parsed.append({"line": line, "row": row, "q": q, "ans": ans, "choices": choices, "sol": sol})
    kind = spec.kind
    if kind == "choice" and not any(p["choices"] for p in parsed):     # options written inside the question
        for p in parsed:
            got = parse_options(p["q"])
            if got is None:
                raise BenchmarkError(f"{f}:{p['line']}: kind 'choice' but no choices field and no 'A) .. B) ..' "
                                     f"options in the question; map fields={{'choices': KEY}}")
            p["q"], p["choices"] = got
    free = [p for p in parsed if not p["choices"]]
    free_kind = kind if kind in ("number", "math") else (
        "number" if free and all(_is_number(_split_hashes(_answer_text(p["ans"]))[0]) for p in free) else "math")
    if kind == "auto":      # options decide per item; the free-form kind and the family once for the benchmark
        kinds = ["choice" if p["choices"] else free_kind for p in parsed]
    else:
        kinds = [kind] * len(parsed)
    top = Counter(kinds).most_common(1)[0][0]
    fam = spec.family or {"number": "gsm8k", "choice": "choice"}.get(top, "math")
    items = []
    for p, kind in zip(parsed, kinds):
        f_line, row = p["line"], p["row"]
        ans = p["ans"]
        sol = p["sol"]
        if kind == "choice":
            if not p["choices"]:
                raise BenchmarkError(f"{f}:{f_line}: kind 'choice' but this item has no choices")
            letter = _choice_letter(ans if not isinstance(ans, list) else ans[0], p["choices"])
            if letter is None:
                raise BenchmarkError(f"{f}:{f_line}: answer {ans!r} is neither a letter {LETTERS[:len(p['choices'])]}, "
                                     f"a 0-based index nor the text of one option")
            gold = letter
        else:
            gold, cot = _split_hashes(_answer_text(ans))
            sol = sol or cot
            if kind == "math" and last_boxed(gold) is not None:
                sol, gold = sol or gold, last_boxed(gold)
            if kind == "number" and not _is_number(gold):
                m = re.search(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+", gold)       # "9 (apples)" -> 9
                if not m:
                    raise BenchmarkError(f"{f}:{f_line}: kind 'number' but the answer {gold!r} holds no number")
                gold = m.group(0)
            if kind == "number":
                gold = gold.replace(",", "").replace("$", "").strip()
        meta = {"file": str(f), "line": f_line, "family": fam, "rel_tol": float(spec.rel_tol or 0.0)}
        for opt in ("level", "subject"):
            v = _get(row, fields[opt]) if opt in fields else None
            if v is not None:
                meta[opt] = v
        iid = _get(row, fields["id"]) if "id" in fields else None
        items.append(Item(spec.name, str(iid if iid is not None else f_line), p["q"], gold, kind,
                          choices=[str(c) for c in p["choices"]] if kind == "choice" else None,
                          solution=str(sol) if sol else None, meta=meta))
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):                             # duplicated ids would break resume keys
        for it in items:
            it.id = f"{it.id}@{it.meta['line']}"
    return subset(items, spec.limit, seed)


def _split_hashes(a: str) -> tuple[str, str | None]:
    """GSM8K Hub layout "worked solution #### 42" -> ("42", "worked solution")."""
    if "####" in a:
        cot, _, ans = a.rpartition("####")
        return ans.strip(), cot.strip() or None
    return a, None


def load_custom(path, fields: dict | None = None, *, name: str = "custom", kind: str = "auto", rel_tol: float = 0.0,
                family: str = "", limit=None, seed=None) -> list[Item]:
    """Shorthand for one file: ``load_custom("svamp.json", {"question": "{Body} {Question}", "answer": "Answer"})``."""
    return load_custom_benchmark(CustomBenchmark(str(path), name, dict(fields or {}), kind, rel_tol, family, limit), seed)
