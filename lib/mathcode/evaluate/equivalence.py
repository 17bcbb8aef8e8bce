"""Is an extracted answer the gold answer? math-verify (sympy-backed) plus a few normalisations.

math-verify handles fractions (``\\dfrac``, ``1/2`` vs ``0.5``), LaTeX expressions, intervals, sets and
units in ``\\mathrm{}``/``\\text{}``; this module adds what it missed on the real benchmark golds
(measured on ``../shared`` files, see tests): thousands separators, ``3e6`` scientific notation (OCW
golds), ``-1./3`` and ``np.`` prefixes (OCW golds written as Python), trailing unit words, and an
optional relative tolerance for OCW's rounded numeric answers.
"""
from __future__ import annotations

import math
import re

from mathcode.evaluate.answer_text import rhs

UNIT_WORDS = (r"(?:dollars?|cents?|units?|meters?|metres?|cm|mm|km|kg|g|m|s|sec|seconds?|minutes?|hours?|"
              r"days?|weeks?|years?|degrees?|eV|keV|MeV|J|W|V|A|K|Hz|N|Pa|mol|L|liters?|%|percent)")


def normalize(ans: str) -> str:
    """Canonical text of an answer: no surrounding $, no sentence-final period (MATH golds like
    ``\\text{Devon}.``), no thousands separators, Python spellings turned into LaTeX, units dropped."""
    a = (ans or "").strip().strip("$").strip()
    a = re.sub(r"^\\\(|\\\)$", "", a).strip()
    a = re.sub(r"(?:\\[,;!: ]|\s)*\.$", "", a).strip().strip("$").strip()    # trailing "." / "\\."
    a = re.sub(r"^\\(?:text|textbf|mathrm)\{([^{}]*)\}$", r"\1", a).strip()
    a = re.sub(r"\\[,!;: ]", "", a) if re.search(r"\d\\,\d", a) else a    # 1\,000
    if not re.search(r"[\[\]()]", a):                                       # keep [0,100], (2,500) intact
        a = re.sub(r"(?<=\d),(?=\d{3}(?:\D|$))", "", a)                  # 1,000 -> 1000
    a = a.replace("np.", "").replace("math.", "")
    a = re.sub(r"(?<![\\a-zA-Z])(arcsin|arccos|arctan|sin|cos|tan|log|ln|exp|pi)\b", r"\\\1", a)  # Python names
    a = re.sub(r"(\d)\.(?!\d)", r"\1", a)                                # -1./3 -> -1/3
    a = re.sub(r"(\d(?:\.\d+)?)[eE]([-+]?\d+)\b", lambda m: f"{m.group(1)}\\times10^{{{int(m.group(2))}}}", a)
    a = re.sub(r"\^\{?\\circ\}?", "", a)                                 # degrees
    a = re.sub(rf"(?<=\d)\s*{UNIT_WORDS}\s*$", "", a)                    # "80 m", "126 dollars"
    a = re.sub(r"\\%$", "", a)
    return a.strip()


def _float(a: str) -> float | None:
    try:
        return float(a)
    except ValueError:
        return None


def _mv(s: str):
    from math_verify import parse
    return parse(f"${s}$")


def is_equivalent(pred: str | None, gold: str, kind: str, rel_tol: float = 0.0) -> bool:
    """True when ``pred`` means ``gold``. ``kind``: 'choice' (letters), 'number' or 'math'.
    ``rel_tol`` > 0 accepts numbers within that relative error (used for OCW's rounded answers)."""
    if pred is None or str(pred).strip() == "":
        return False
    if kind == "choice":
        return str(pred).strip().strip("().").upper() == str(gold).strip().strip("().").upper()
    p, g = normalize(str(pred)), normalize(str(gold))
    if p == g or (p.lower() == g.lower() and not re.search(r"\d", p)):
        return True
    if "=" in p and "=" not in g:                 # "x = 5" / "9 * 2 = 18" against a bare value
        return is_equivalent(rhs(p), gold, kind, rel_tol)
    pf, gf = _float(p), _float(g)
    if pf is not None and gf is not None:
        return math.isclose(pf, gf, rel_tol=max(rel_tol, 1e-9), abs_tol=1e-9)
    from math_verify import verify
    try:
        gp, pp = _mv(g), _mv(p)
    except Exception:
        return False
    if not gp or not pp:
        return False
    if verify(gp, pp):
        return True
    if rel_tol > 0:
        try:
            gv, pv = complex(gp[0]), complex(pp[0])
            return gv.imag == 0 and pv.imag == 0 and math.isclose(pv.real, gv.real, rel_tol=rel_tol)
        except (TypeError, ValueError):
            return False
    return False
