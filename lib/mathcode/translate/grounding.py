"""Is a block about *this passage*? Two checks that need no execution.

* **grounded** — the result the model states must appear in the passage (after normalisation): as a
  number (``2,340`` = ``2340``, ``\\frac{3}{4}`` = ``0.75``, ``2.5`` matches a passage's ``2.50``; a passage
  value rounded to fewer decimals, ``0.33`` for ``0.333…``, also counts), or as the same LaTeX with
  spacing, ``\\left``/``\\right``, ``\\dfrac`` and ``$`` removed, or as a symbolically equal side of an
  equation in the passage. Without it a model can state and print its own misreading (a 150 km / 60 km/h
  trip written as ``150*60 = 9000``) and still "verify".
* **consistent** — the stated LaTeX expression, where it evaluates to a number (math-verify's LaTeX parser,
  sympy underneath), must evaluate to the stated result (``1^2+2*3^2`` stated as 3 is inconsistent).
  Expressions with free symbols, or that do not parse, are left alone (``None``).
"""
from __future__ import annotations

import math
import re
import threading

from .verify import to_number

_PASSAGE_NUM = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
_PASSAGE_FRAC = re.compile(r"\\[dt]?frac\{\s*-?\d+\s*\}\{\s*-?\d+\s*\}|(?<![\w.])\d+\s*/\s*\d+(?![\w.])")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|<<([^<>]+)>>", re.S)


def normalise_latex(s: str) -> str:
    s = (s or "").replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\(?:,|!|;|:|quad|qquad|displaystyle)|\$|\s", "", s)
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("{,}", ",")
    return s.rstrip(".").strip()


def passage_numbers(text: str) -> list[tuple[float, int]]:
    """Every number in ``text`` as (value, decimals written)."""
    out = []
    for m in [*_PASSAGE_NUM.finditer(text or ""), *_PASSAGE_FRAC.finditer(text or "")]:
        tok = m.group(0)
        v = to_number(tok)
        if v is None:
            continue
        dec = len(tok.split(".")[1]) if "." in tok and "frac" not in tok and "/" not in tok else 0
        out.append((v, dec))
        if tok.startswith("-"):
            out.append((-v, dec))                  # "5-3" is not minus three; take the magnitude too
    return out


def _number_in(x: float, nums: list[tuple[float, int]]) -> bool:
    for v, dec in nums:
        if abs(v - x) <= 1e-9 * max(1.0, abs(x)):
            return True
        if dec and abs(v - x) <= 0.5 * 10 ** -dec + 1e-12:    # the passage states it rounded
            return True
    return False


def _equation_sides(text: str) -> list[str]:
    sides = []
    for m in _MATH_SPAN.finditer(text or ""):
        body = next(g for g in m.groups() if g is not None)
        sides += [s for s in re.split(r"=|\\approx|\\equiv", body) if s.strip()]
    return sides[:60]


def grounded(result: str, passage: str) -> tuple[bool, str]:
    """(True, how) when ``result`` appears in ``passage``; (False, why not) otherwise."""
    result = (result or "").strip()
    if not result:
        return False, "no stated result"
    x = to_number(result)
    if x is not None:
        if _number_in(x, passage_numbers(passage)):
            return True, "number"
    nr = normalise_latex(result)
    if nr and nr in normalise_latex(passage):
        return True, "text"
    if x is None:
        from .verify import _symbolic
        for side in _equation_sides(passage):
            try:
                if _symbolic(side, result):
                    return True, "symbolic"
            except Exception:                                  # noqa: BLE001 - unparsable side
                continue
    return False, f"stated result {result[:60]!r} does not appear in the passage"


def evaluate_latex(expr: str):
    """The numeric value of a LaTeX expression without free symbols, else None."""
    from math_verify import parse
    main = threading.current_thread() is threading.main_thread()
    try:
        parsed = parse(f"${expr}$", **({} if main else {"parsing_timeout": None}))
    except Exception:                                          # noqa: BLE001
        return None
    for p in parsed:
        try:
            if getattr(p, "free_symbols", None) or not getattr(p, "is_number", False):
                continue
            v = complex(p.evalf())
            if abs(v.imag) < 1e-12:
                return v.real
        except Exception:                                      # noqa: BLE001
            continue
    return None


def consistent(expression: str, result: str, tolerance: float = 0.01) -> tuple[bool | None, str]:
    """Whether the stated expression evaluates to the stated result: True, False, or None (cannot tell)."""
    x = to_number(result)
    if x is None or not (expression or "").strip():
        return None, ""
    sides = [s for s in re.split(r"=|\\approx", expression) if s.strip()]
    values = []
    for side in sides:
        if normalise_latex(side) == normalise_latex(result):
            continue
        if re.fullmatch(r"\s*[A-Za-z]\w*\s*", side) or "\\%" in side or "%" in side:
            continue                                           # a name, or a percentage (parsers disagree)
        v = evaluate_latex(side)
        if v is not None:
            values.append((side.strip(), v))
    if not values:
        return None, ""
    for side, v in values:
        if abs(v - x) <= tolerance or abs(v - x) <= 1e-6 * max(abs(v), abs(x)):
            return True, ""
    side, v = values[0]
    return False, f"${side[:80]}$ evaluates to {v:.6g}, not the stated {result[:40]}"


# a value stated as a result: right after "=" (not "<=", ">=", "!=", "=="), and not the start of a longer
# expression ("u=2t", "x = 3/4", "N = 2^{10}")
_STATED = re.compile(r"(?:(?<![<>!=])=(?!=)|\\approx|\\equiv)\s*\\?[$£€]?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
                     r"|-?\\[dt]?frac\{-?\d+\}\{\d+\})(?!\.?\d|[a-zA-Z{(]|\s*(?:[*/^]|\\times|\\cdot))")
_OPERATION = re.compile(r"\d\s*(?:[-+*/^×÷·!]|\\times|\\cdot|\\div|mod)|\\(?:frac|dfrac|tfrac|sqrt|binom)|\d\s*\(")


def stated_values(passage: str) -> list[tuple[float, str]]:
    """Every value the passage states as the result of something: the number right after ``=`` (or
    ``\\approx``), as (value, the passage's own spelling)."""
    out = []
    for m in _STATED.finditer(passage or ""):
        v = to_number(m.group(1))
        if v is not None:
            out.append((v, m.group(1)))
    return out


def reread_result(expression: str, stdout: str, passage: str, tolerance: float = 0.01) -> str:
    """The passage's spelling of the printed value when (a) the block's own expression is an operation that
    evaluates to that value and (b) the passage states that value as a result; else "".

    This keeps a block whose model copied the wrong number into *Computation Result* (measured on the demo:
    ``1^2+2*3^2`` stated as the chain's last value 3, code printing 19, the passage saying ``=19``) without
    trusting the model's statement: the value comes from the passage and the code must compute it."""
    from .verify import output_candidates
    cands = output_candidates(stdout)
    y = to_number(cands[0]) if cands else None
    if y is None or not (expression or "").strip():
        return ""
    sides = [sd for sd in re.split(r"=|\\approx", expression) if sd.strip() and _OPERATION.search(sd)]
    if not math.isfinite(y) or not any((v := evaluate_latex(sd)) is not None and abs(v - y) <= tolerance
                                         for sd in sides):
        return ""
    for v, spelled in stated_values(passage):       # the passage's value exactly, or as rounded there
        dec = len(spelled.split(".")[1]) if "." in spelled and "frac" not in spelled else 0
        if _number_in(y, [(v, dec)]):
            return spelled
    return ""
