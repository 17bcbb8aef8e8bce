"""Answer extraction from free-form completions.

Order of evidence (first that matches wins): the last ``\\boxed{}``; Minerva's "Final Answer: The final answer
is X. I hope it is correct."; "The (final) answer is X" (of an equation chain "9 * 2 = 18" the right-hand side
is taken); "#### X" (GSM8K's own marker); for multiple choice an upper-case letter in one of several phrasings
(never an English article: "The answer is a point" is not option A), else the option *text* the model wrote,
matched by text before any formula equivalence; for math answers math-verify's own extraction of the last expression; finally the last number in the text. The method that matched
is returned so the per-item JSONL shows *why* an answer was taken.
"""
from __future__ import annotations

import re

from mathcode.evaluate.equivalence import is_equivalent, normalize
from mathcode.evaluate.answer_text import LETTERS, last_boxed, rhs  # noqa: F401  (rhs: part of this module's interface)

NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+"
_MINERVA = re.compile(r"final\s+answer\s+is\s*:?\s*(.*?)\.?\s*I\s+hope\s+it\s+is\s+correct", re.I | re.S)
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+)", re.I)


def _sentence(seg: str) -> str:
    """The answer phrase of "... answer is <phrase>. More text": up to the first sentence end or newline;
    a ``$...$`` or ``\\(...\\)`` span is kept whole (it may hold periods: ``$3.5$``)."""
    seg = seg.strip()
    m = re.match(r"(\$\$?)(.+?)\1", seg, re.S) or re.match(r"\\\((.+?)\\\)", seg, re.S)
    if m:
        return m.group(0)
    seg = seg.split("\n")[0]
    m = re.search(r"\.(?:\s|$)", seg)           # "18. Next" -> "18"; "3.5" keeps its point
    return seg[:m.start()] if m else seg


def _clean(ans: str) -> str:
    """Trim sentence punctuation, surrounding $...$ / \\(...\\) and a leading currency sign."""
    a = ans.strip()
    a = re.split(r"\n", a)[0].strip()
    a = re.sub(r"^\\\(|\\\)$", "", a).strip()
    a = a.rstrip(" .;,")
    if a.startswith("$") and a.endswith("$") and len(a) > 1:
        a = a.strip("$").strip()
    a = a.strip("$").strip()
    a = a.rstrip(" .;,")
    return a


def last_number(text: str) -> str | None:
    nums = re.findall(NUMBER, text or "")
    if not nums:
        return None
    return nums[-1].replace("$", "").replace(",", "").strip()


def _letter(text: str, n_choices: int) -> tuple[str | None, str]:
    L = LETTERS[:n_choices]
    # Bare letters count only in upper case; lower case only inside brackets "(b)". No re.I on the letter.
    pats = [
        (rf"[Aa]nswer\s*(?:is|:)?\s*(?:[Oo]ption|[Cc]hoice)?\s*:?\s*(?:\(([{L}a-{L[-1].lower()}])\)|\[([{L}])\]"
         rf"|([{L}]))(?![A-Za-z0-9])", "answer-is-letter"),
        (rf"\\boxed\{{\s*(?:\\text(?:bf)?\{{)?\(?([{L}])\)?\}}", "boxed-letter"),
        (rf"(?:[Oo]ption|[Cc]hoice)\s*\(?([{L}])\)?(?![A-Za-z0-9])", "option-letter"),
        (rf"\A\s*\(?([{L}])[).:](?:\s|$)", "leading-letter"),
        (rf"\A\s*([{L}])\s*\Z", "letter-only"),
        (rf"\(([{L}])\)", "parenthesised-letter"),
    ]
    for pat, how in pats:
        m = re.findall(pat, text)
        if m:
            hit = m[-1] if how not in ("leading-letter",) else m[0]
            hit = next(g for g in hit if g) if isinstance(hit, tuple) else hit
            return hit.upper(), how
    return None, ""


def _norm_text(s: str) -> str:
    s = _clean(str(s)).lower()
    s = re.sub(r"\\(?:text|mathrm|textbf)\{([^}]*)\}", r"\1", s)
    s = re.sub(r"[\s$]+", " ", s).strip(" .")
    return s


def _looks_like_formula(s: str) -> bool:
    """True for "3/2", "\\frac{3}{2}", "2x+1"; False for prose ("3 over 2", "a point")."""
    words = re.findall(r"(?<!\\)\b[A-Za-z]{3,}\b", s)
    return bool(s.strip()) and not words


def match_option_text(cand: str, choices: list[str]) -> tuple[str | None, str]:
    """Which option the text ``cand`` names: exact text first, then the same number, then (formulas only)
    math equivalence; an answer that fits several options is not guessed."""
    c = _norm_text(cand)
    if not c:
        return None, "none"
    texts = [_norm_text(x) for x in choices]
    hits = [i for i, t in enumerate(texts) if t == c]
    if len(hits) == 1:
        return LETTERS[hits[0]], "option-text"
    try:
        cf = float(normalize(c))
        hits = [i for i, t in enumerate(texts) if _as_float(normalize(t)) == cf]
        if len(hits) == 1:
            return LETTERS[hits[0]], "option-number"
    except ValueError:
        pass
    if _looks_like_formula(c):
        hits = [i for i, t in enumerate(texts) if _looks_like_formula(t) and is_equivalent(c, t, "math")]
        if len(hits) == 1:
            return LETTERS[hits[0]], "option-formula"
    return None, "none"


def _as_float(s: str):
    try:
        return float(s)
    except ValueError:
        return None


def answer_phrase(text: str) -> tuple[str | None, str]:
    """The model's stated final answer before any kind-specific parsing: boxed, Minerva, answer-is, ####."""
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed), "boxed"
    m = _MINERVA.findall(text)
    if m:
        return _clean(m[-1]), "final-answer"
    m = _ANSWER_IS.findall(text)
    if m:
        return _clean(_sentence(m[-1])), "answer-is"
    m = re.findall(r"####\s*(.+)", text)
    if m:
        return _clean(m[-1]), "hashes"
    return None, "none"


def extract_answer(text: str, kind: str, choices: list[str] | None = None) -> tuple[str | None, str]:
    """(answer, method) for a completion; answer None when nothing answer-like is found."""
    text = text or ""
    if kind == "choice":
        letter, how = _letter(text, len(choices or LETTERS[:4]))
        if letter:
            return letter, how
        cand, _ = answer_phrase(text)
        if cand is not None and choices:
            return match_option_text(cand, choices)
        return None, "none"
    cand, how = answer_phrase(text)
    if cand is not None and cand != "":
        if kind == "number":
            n = re.findall(NUMBER, rhs(cand))
            if n:
                return n[0].replace("$", "").replace(",", "").strip(), how
        else:
            return cand, how
    if kind == "math":                     # no stated answer: math-verify's own extraction (last LaTeX / expression)
        got = _mv_extract(text)
        if got:
            return got, "math-verify"
    n = last_number(text)
    return (n, "last-number") if n is not None else (None, "none")


def _mv_extract(text: str) -> str | None:
    try:
        from math_verify import parse
        res = parse(text)
    except Exception:                      # math-verify raises on odd input or timeouts; fall back to numbers
        return None
    return str(res[1]) if len(res) > 1 and str(res[1]).strip() else None
