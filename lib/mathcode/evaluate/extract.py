"""Answer extraction from free-form completions.

Order of evidence (first that matches wins): the last ``\\boxed{}``; "The (final) answer is X";
"#### X" (GSM8K's own marker); for multiple choice a letter in one of several phrasings, or the option
text the model wrote; finally the last number in the text. The method that matched is returned so the
per-item JSONL shows *why* an answer was taken.
"""
from __future__ import annotations

import re

from .benchmarks import LETTERS, last_boxed

NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+"
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+)", re.I)


def _clean(ans: str) -> str:
    """Trim sentence punctuation, surrounding $...$ and a leading currency sign."""
    a = ans.strip()
    a = re.split(r"\n", a)[0].strip()
    a = re.sub(r"^\\\(|\\\)$", "", a).strip()
    a = a.rstrip(" .;,")
    if a.startswith("$") and a.endswith("$") and len(a) > 1:
        a = a[1:-1].strip()
    a = a.strip("$").strip()
    a = a.rstrip(" .;,")
    return a


def last_number(text: str) -> str | None:
    nums = re.findall(NUMBER, text or "")
    if not nums:
        return None
    return nums[-1].replace("$", "").replace(",", "").strip()


def _choice_letter(text: str, n_choices: int) -> tuple[str | None, str]:
    L = LETTERS[:n_choices]
    pats = [
        (rf"answer\s*(?:is|:)?\s*(?:option|choice)?\s*[(\[]?\s*([{L}])\s*[)\].:]?(?![a-zA-Z])", "answer-is-letter"),
        (rf"\\boxed\{{\s*(?:\\text\{{)?\(?([{L}])\)?\}}", "boxed-letter"),
        (rf"(?:option|choice)\s*[(\[]?([{L}])[)\]]?(?![a-zA-Z])", "option-letter"),
        (rf"^\s*[(\[]?([{L}])[)\].:](?:\s|$)", "leading-letter"),
        (rf"\(([{L}])\)", "parenthesised-letter"),
    ]
    for pat, how in pats:
        m = re.findall(pat, text, flags=re.I | re.M) if how != "leading-letter" else re.findall(pat, text, flags=re.M)
        if m:
            return m[-1].upper() if how != "leading-letter" else m[0], how
    return None, ""


def extract_answer(text: str, kind: str, choices: list[str] | None = None) -> tuple[str | None, str]:
    """(answer, method) for a completion; answer None when nothing answer-like is found."""
    text = text or ""
    if kind == "choice":
        letter, how = _choice_letter(text, len(choices or LETTERS[:4]))
        if letter:
            return letter, how
        # the model wrote an option's text instead of its letter
        cand = last_boxed(text)
        m = _ANSWER_IS.findall(text)
        cand = cand if cand is not None else (_clean(m[-1]) if m else None)
        if cand is not None and choices:
            from .equivalence import is_equivalent
            for i, c in enumerate(choices):
                if _clean(c) == cand or is_equivalent(cand, _clean(c), "math"):
                    return LETTERS[i], "option-text"
        return None, "none"
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed), "boxed"
    m = _ANSWER_IS.findall(text)
    if m:
        a = _clean(m[-1])
        if kind == "number":
            n = re.findall(NUMBER, a)
            if n:
                return n[0].replace("$", "").replace(",", "").strip(), "answer-is"
        elif a:
            return a, "answer-is"
    m = re.findall(r"####\s*(.+)", text)
    if m:
        a = _clean(m[-1])
        return (last_number(a) or a) if kind == "number" else a, "hashes"
    n = last_number(text)
    return (n, "last-number") if n is not None else (None, "none")
