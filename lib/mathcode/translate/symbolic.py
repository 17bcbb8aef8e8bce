"""The symbolic reader: LaTeX and sympy printouts to numbers/expressions, with math-verify and sympy.

Why a separate module: sympy can take unbounded time and memory on short text (``9**9**9``,
``factorial(10**8)``, ``expand((x+1)**100000)``). These functions are ONLY called inside the judge's worker
process (``bounded``), which the host kills at its deadline; nothing in the host imports sympy through here.

LaTeX is normalised before parsing (latex2sympy, the converter under math-verify), because parsers read ``18\\,\\text{m} \\times 24\\,\\text{m}`` as 18 and
``19 \\bmod 8`` as a modulus of something else: units and ``\\text{}`` are removed, ``\\div`` becomes ``/``,
thousands separators go, ``\\bmod`` is split and evaluated as Python's ``%`` on integers, a percent becomes
``/100``. What still has free symbols, or does not parse, is "cannot tell" (None) — never a guessed value.
"""
from __future__ import annotations

import re
from fractions import Fraction

from mathcode.translate import values as VA

# text that sympy would evaluate for ever (power towers, huge exponents or factorials) is not even tried
_TOO_BIG = re.compile(r"(?:\*\*|\^)\s*[({]?\s*[-+]?\d+(?:\.\d+)?\s*[)}]?\s*(?:\*\*|\^)|(?:\*\*|\^)\s*\{?\(?\s*\d{4,}"
                      r"|factorial\s*\([^)]*(?:\*\*|\^|\d{4,})|\d{4,}\s*!|\\(?:prod|sum)\b")


def _mv():
    from math_verify import parse, verify
    return parse, verify


def normalise_latex(s: str) -> str:
    s = VA.strip_units(VA.clean_latex(s))
    s = s.replace("\\div", "/").replace("÷", "/").replace("×", "\\times ").replace("·", "\\cdot ")
    s = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", s)
    return s.strip()


def latex_sympy(s: str):
    """A sympy object for the WHOLE LaTeX text ``s``, or None. latex2sympy (math-verify's converter) is called
    directly: math-verify's ``parse`` extracts an answer-like part (``25 | a and 4 | a`` gave 4, ``\\text{Area}
    = \\frac{1}{2} \\times 12`` gave 12), which is right for reading answers and wrong for evaluating a step."""
    s = normalise_latex(s)
    if not s or len(s) > 400 or _TOO_BIG.search(s):
        return None
    from latex2sympy2_extended import latex2sympy
    try:
        return latex2sympy(s)
    except Exception:                                          # noqa: BLE001 - an unparsable text is "cannot tell"
        return None


def latex_number(s: str):
    """The value of a LaTeX expression without free symbols as an exact ``values.Num`` (irrationals to 30
    digits), ``Cplx``, or None."""
    s = normalise_latex(s)
    m = re.fullmatch(r"(.+?)\s*(?:\\bmod|\\mod|\bmod\b)\s*(.+)", s)
    if m:                                                      # a \bmod b: both sides as integers
        a, b = latex_number(m.group(1)), latex_number(m.group(2))
        if isinstance(a, VA.Num) and isinstance(b, VA.Num) and a.value.denominator == 1 == b.value.denominator \
                and b.value:
            return VA.Num(Fraction(int(a.value) % int(b.value)))
        return None
    if cannot_tell(s):
        return None
    e = latex_sympy(s)
    return sympy_number(e)


# notations that parsers read as something else: a base subscript (1011_2 read as 1011), a mixed number
# (2\frac{1}{2} read as 2 * 1/2), congruences, relations, plus-minus: "cannot tell", never a wrong value
_AMBIGUOUS = re.compile(r"\d\s*_|\d\s*\\frac|\\pmod|\\equiv|\\pm|\\mp|<|>|\\le|\\ge|\\neq|\\approx")


def cannot_tell(latex: str) -> bool:
    return bool(_AMBIGUOUS.search(latex))


def sympy_number(e):
    if e is None:
        return None
    try:
        import sympy
        if isinstance(e, (sympy.Tuple, list, tuple, sympy.FiniteSet)) or not hasattr(e, "free_symbols"):
            return None
        if e.free_symbols or not getattr(e, "is_number", False):
            return None
        if e.is_Integer:
            return VA.Num(Fraction(int(e)))
        if e.is_Rational:
            return VA.Num(Fraction(int(e.p), int(e.q)))
        v = sympy.N(e, 30)
        re_, im = v.as_real_imag()
        if not (re_.is_finite and im.is_finite):
            return VA.NonFinite(str(v))
        r = VA.Num(Fraction(str(sympy.Float(re_, 30))))      # exact value to 30 digits
        if abs(im) > sympy.Float("1e-25"):
            return VA.Cplx(r, VA.Num(Fraction(str(sympy.Float(im, 30)))))
        return r
    except Exception:                                          # noqa: BLE001
        return None


def python_sympy(text: str, names=None):
    """A sympy object for a Python/sympy printout (``sqrt(3)/2``, ``2*pi``, ``x**2 + 2*x + 1``), or None.
    No implicit multiplication: ``12 7`` is two numbers, not 84."""
    if not text or len(text) > 400 or _TOO_BIG.search(text):
        return None
    from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations
    try:
        return parse_expr(text, local_dict=dict(names or {}), transformations=standard_transformations + (convert_xor,),
                          evaluate=True)
    except Exception:                                          # noqa: BLE001
        return None


def to_value(v):
    """``values.Expr`` -> a plain value where it is a number (several values -> ``Many``); else the sympy object
    (or None)."""
    if isinstance(v, VA.Many):
        items = [to_value(x) for x in v.items]
        return VA.Many(tuple(items), v.ordered) if all(isinstance(x, (VA.Num, VA.Cplx)) for x in items) else None
    if not isinstance(v, VA.Expr):
        return v
    if v.latex:
        n = latex_number(v.text)
        if n is not None:
            return n
        if cannot_tell(normalise_latex(v.text)):
            return None
    e = latex_sympy(v.text) if v.latex else python_sympy(v.text)
    if isinstance(e, (list, tuple, set)) or type(e).__name__ in ("Tuple", "FiniteSet"):
        items = [sympy_number(x) for x in e]                     # a printed list of roots: [-sqrt(2), sqrt(2)]
        return VA.Many(tuple(items)) if items and all(x is not None for x in items) else None
    n = sympy_number(e)
    return n if n is not None else e


def same(stated, printed, rule: str = "precision", tolerance: float = 0.01) -> tuple[bool, str]:
    """Plain comparison where possible (``values.same``), else symbolic: numbers by value, expressions with
    free symbols by math-verify's equivalence."""
    r = VA.same(stated, printed, rule, tolerance)
    if r is not None:
        return r, "numeric"
    s, p = to_value(stated), to_value(printed)
    if s is None or p is None:
        return False, "cannot read symbolically"
    r = VA.same(s, p, rule, tolerance) if not _is_sympy(s) and not _is_sympy(p) else None
    if r is not None:
        return r, "symbolic (value)"
    if not (_is_sympy(s) and _is_sympy(p)):
        return False, "not equivalent"
    try:
        names = {str(x): x for x in s.free_symbols}
        if isinstance(printed, VA.Expr) and not printed.latex:
            p = python_sympy(printed.text, names) or p           # the same symbols by name (math-verify's are real)
        _, verify = _mv()
        ok = bool(verify(s, p, timeout_seconds=None))
        return ok, "symbolic"
    except Exception:                                          # noqa: BLE001
        return False, "not equivalent"


def _is_sympy(x) -> bool:
    return x is not None and hasattr(x, "free_symbols") and not isinstance(x, (VA.Num, VA.Cplx, VA.Many))
