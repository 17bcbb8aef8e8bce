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

from mathcode.evaluate.benchmarks import LETTERS, BenchmarkError, Item
from mathcode.evaluate import fewshot as F


class ProtocolError(ValueError):
    """Unknown protocol or missing exemplar source; the message says what to install or pass."""


@dataclass
class Shot:
    question: str          # user-side text of the exemplar (already formatted)
    target: str            # the answer text that follows


@dataclass
class Protocol:
    name: str
    n_shots: int
    stop: list[str]
    target_delimiter: str = " "
    shot_delimiter: str = "\n\n"
    scorer: str = "kit"                       # "kit" | "lm_eval_gsm8k" | "lm_eval_gsm8k_cot" | "mmlu"
    fewshot_file: str | None = None
    exemplar_source: str = ""                 # shown in tables: where the shots came from
    _cache: dict = field(default_factory=dict, repr=False)

    # --- formatting of one question ------------------------------------------------------------------
    def format_question(self, item: Item) -> str:
        q = item.question.strip()
        if self.name == "paper":
            return F.format_question(item)
        if self.name == "minerva_math":
            return f"Problem:\n{q}\n\nSolution:"
        if self.name == "lm_eval_gsm8k_cot":
            return f"Q: {q}\nA:"
        if self.name == "lm_eval_gsm8k":
            return f"Question: {q}\nAnswer:"
        if self.name == "mmlu_5shot":
            opts = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(item.choices or []))
            return f"{q}{opts}\nAnswer:"
        raise ProtocolError(self.name)

    def header(self, item: Item) -> str:
        if self.name == "mmlu_5shot":
            subj = str(item.meta.get("subject") or "mathematics").replace("_", " ")
            return f"The following are multiple choice questions (with answers) about {subj}.\n\n"
        return ""

    # --- exemplars ----------------------------------------------------------------------------------
    def shots(self, item: Item, family: str, index: int = 0) -> list[Shot]:
        if self.n_shots == 0:
            return []
        if self.name == "paper":
            return [Shot(F.format_question(ex), sol) for ex, sol in F.exemplar_items(family)[:self.n_shots]]
        if self.name in ("minerva_math", "lm_eval_gsm8k_cot"):
            return self._lm_eval_shots()[:self.n_shots]
        if self.name == "lm_eval_gsm8k":
            pool = self._pool("gsm8k")
            rng = random.Random(1234 + index)           # lm-eval's fewshot_seed; per item, without the item
            pick = [r for r in rng.sample(pool, min(len(pool), self.n_shots + 1)) if r["question"] != item.question]
            return [Shot(f"Question: {r['question'].strip()}\nAnswer:", r["answer"]) for r in pick[:self.n_shots]]
        if self.name == "mmlu_5shot":
            return self._mmlu_shots(item)
        raise ProtocolError(self.name)

    def _lm_eval_shots(self) -> list[Shot]:
        if "lm" not in self._cache:
            self._cache["lm"] = lm_eval_exemplars(self.name)
        return self._cache["lm"]

    def _pool(self, what: str) -> list[dict]:
        if what in self._cache:
            return self._cache[what]
        rows = None
        if self.fewshot_file:
            rows = _read_fewshot_file(self.fewshot_file)
        else:
            try:
                from datasets import load_dataset
                rows = [dict(r) for r in load_dataset("openai/gsm8k", "main", split="train")]
                self.exemplar_source = "openai/gsm8k train (Hub)"
            except Exception as e:        # offline, no cache
                raise ProtocolError(
                    f"protocol {self.name!r} draws its 5 shots from the GSM8K train split, which could not be loaded "
                    f"({type(e).__name__}); pass fewshot_file=<JSONL with question/answer rows in the Hub layout "
                    f"'... #### N'> or use protocol 'lm_eval_gsm8k_cot' (exemplars ship with lm-eval)") from None
        self._cache[what] = rows
        return rows

    def _mmlu_shots(self, item: Item) -> list[Shot]:
        subj = str(item.meta.get("subject") or "")
        key = f"mmlu:{subj}"
        if key not in self._cache:
            rows = None
            if self.fewshot_file:
                rows = [r for r in _read_fewshot_file(self.fewshot_file) if not subj or r.get("subject", subj) == subj]
                self.exemplar_source = self.fewshot_file
            else:
                try:
                    from datasets import load_dataset
                    ds = load_dataset("cais/mmlu", subj, split="dev")
                    rows = [{"question": r["question"], "choices": r["choices"], "answer": LETTERS[int(r["answer"])]}
                            for r in ds]
                    self.exemplar_source = "cais/mmlu dev (Hub)"
                except Exception:
                    rows = None
            if not rows:                      # offline: the kit's written multiple-choice exemplars, labelled
                rows = [{"question": ex.question, "choices": ex.choices, "answer": ex.answer}
                        for ex, _ in F.exemplar_items("choice")]
                self.exemplar_source = "kit-written choice exemplars (MMLU dev split unavailable offline)"
            self._cache[key] = rows
        out = []
        for r in self._cache[key][:self.n_shots]:
            it = Item("shot", "", r["question"], str(r["answer"]), "choice", choices=[str(c) for c in r["choices"]])
            out.append(Shot(self.format_question(it), str(r["answer"])))
        return out

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


def lm_eval_exemplars(protocol: str) -> list[Shot]:
    """The few-shot exemplars of lm-eval's own task config (gsm8k-cot YAML; minerva_math utils.py)."""
    tasks = _lm_eval_tasks_dir()
    if protocol == "lm_eval_gsm8k_cot":
        import yaml
        cfg = yaml.safe_load((tasks / "gsm8k" / "gsm8k-cot.yaml").read_text())
        return [Shot(f"Q: {s['question'].strip()}\nA:", s["target"]) for s in cfg["fewshot_config"]["samples"]]
    if protocol == "minerva_math":
        src = (tasks / "minerva_math" / "utils.py").read_text()
        fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "list_fewshot_samples")
        ret = next(n for n in ast.walk(fn) if isinstance(n, ast.Return))
        return [Shot(f"Problem:\n{s['problem']}\n\nSolution:", s["solution"]) for s in ast.literal_eval(ret.value)]
    raise ProtocolError(protocol)


PROTOCOLS = {
    "paper": dict(n_shots=4, stop=list(F.STOP)),
    "minerva_math": dict(n_shots=4, stop=["Problem:"]),
    "lm_eval_gsm8k_cot": dict(n_shots=8, stop=["Q:", "</s>", "<|im_end|>"], scorer="lm_eval_gsm8k_cot"),
    "lm_eval_gsm8k": dict(n_shots=5, stop=["Question:", "</s>", "<|im_end|>"], scorer="lm_eval_gsm8k"),
    "mmlu_5shot": dict(n_shots=5, stop=["\n", "</s>"], scorer="mmlu"),
}


def get_protocol(name: str = "paper", n_shots: int | None = None, fewshot_file: str | None = None) -> Protocol:
    """A protocol by name; ``n_shots`` overrides its published shot count (0 = zero-shot)."""
    if name not in PROTOCOLS:
        raise ProtocolError(f"parameter protocol={name!r}: use one of {', '.join(PROTOCOLS)}")
    kw = dict(PROTOCOLS[name])
    if n_shots is not None and n_shots >= 0:
        if name == "paper" and n_shots > 4:
            raise ProtocolError(f"n_shots={n_shots}: protocol 'paper' has 4 written exemplars per family; use 0..4")
        kw["n_shots"] = int(n_shots)
    p = Protocol(name, fewshot_file=fewshot_file or None, **kw)
    p.exemplar_source = {"paper": "kit-written (mathcode.evaluate.fewshot)",
                         "minerva_math": "lm-eval minerva_math", "lm_eval_gsm8k_cot": "lm-eval gsm8k-cot"
                         }.get(name, fewshot_file or "")
    return p


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
