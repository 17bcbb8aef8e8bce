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


# LaTeX commands the reader knows. A book's own macros (``\\dd``, ``\\abs``, ``\\R``, ``\\vb``) are left to the model:
# a parser would read ``\\dd{x}`` as a function ``dd(x)`` and compare against that, so text with one is "cannot tell".
KNOWN_MACROS = frozenset("""
frac dfrac tfrac cfrac sqrt cdot times div pi sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh ln log exp
left right int iint oint lim to infty sum prod le ge leq geq lt gt neq ne pm mp approx cdots ldots dots prime partial
quad qquad begin end pmatrix bmatrix matrix array binom choose lfloor rfloor lceil rceil vert lvert rvert mid det max
min gcd lcm bmod pmod mod equiv circ displaystyle limits nolimits big Big bigg Bigg mathbf boldsymbol mathit cup cap in
setminus emptyset varnothing land lor neg colon alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota
kappa lambda mu nu xi omicron rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma
Upsilon Phi Psi Omega e i mathrm text operatorname ast star cdotp rightarrow Rightarrow mapsto infin
""".split())
_MACRO = re.compile(r"\\([A-Za-z]+)")


def unknown_macros(s: str) -> list[str]:
    """The LaTeX commands of ``s`` that are not standard math (a book's own macros)."""
    return sorted({m for m in _MACRO.findall(s or "") if m not in KNOWN_MACROS})


def latex_sympy(s: str):
    """A sympy object for the WHOLE LaTeX text ``s``, or None. latex2sympy (math-verify's converter) is called
    directly: math-verify's ``parse`` extracts an answer-like part (``25 | a and 4 | a`` gave 4, ``\\text{Area}
    = \\frac{1}{2} \\times 12`` gave 12), which is right for reading answers and wrong for evaluating a step."""
    s = normalise_latex(s)
    if not s or len(s) > 400 or _TOO_BIG.search(s) or unknown_macros(s):
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
        e = e.doit()               # the LaTeX reader leaves -(5 - 5) unevaluated: its numeric value is float noise
        if e.is_Integer:
            return VA.Num(Fraction(int(e)))
        if e.is_Rational:
            return VA.Num(Fraction(int(e.p), int(e.q)))
        v = sympy.N(e, 30)
        re_, im = v.as_real_imag()
        if not (re_.is_finite and im.is_finite):
            return VA.NonFinite(str(v))
        if e.has(sympy.Float) and abs(re_) < sympy.Float("1e-25") and abs(im) < sympy.Float("1e-25"):
            return VA.Num(Fraction(0))                         # -(5 - 5.0): float noise of a zero, not 1e-53
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


def same(stated, printed, rule: str = "precision", tolerance: float = 0.01, up_to_constant: bool = False
         ) -> tuple[bool, str]:
    """Plain comparison where possible (``values.same``), else symbolic: numbers by value, expressions with
    free symbols by math-verify's equivalence, solution sets (inequalities, intervals) as sets over the reals,
    matrices entry by entry. ``up_to_constant``: an antiderivative — equal when the difference does not depend on
    any variable (``+ C`` written or not)."""
    if _relational(stated) or _relational(printed):
        return _same_set(stated, printed)
    if isinstance(stated, VA.Mat) or isinstance(printed, VA.Mat) or _is_matrix_text(printed):
        return _same_matrix(stated, printed, rule, tolerance)
    if up_to_constant:
        stated, printed = _drop_constant(stated), _drop_constant(printed)
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
        if up_to_constant:
            return _differ_by_constant(s, p), "symbolic, up to a constant"
        _, verify = _mv()
        ok = bool(verify(s, p, timeout_seconds=None))
        return ok, "symbolic"
    except Exception:                                          # noqa: BLE001
        return False, "not equivalent"


def _is_sympy(x) -> bool:
    return x is not None and hasattr(x, "free_symbols") and not isinstance(x, (VA.Num, VA.Cplx, VA.Many))


# --- antiderivatives: equal up to a constant ------------------------------------------------------------
_CONSTANT = re.compile(r"\s*\+\s*(?:C|c|K)(?:_\{?\d+\}?)?\s*$")


def is_antiderivative(expression: str, stated: str) -> bool:
    """An indefinite integral (``\\int`` without limits in the expression) or a result written with ``+ C``."""
    return bool(re.search(r"\\[io]?int(?!\s*(?:\\limits\s*)?[_^])", expression or "")) or \
        bool(_CONSTANT.search(VA.clean_latex(stated or "")))


def _drop_constant(v):
    """``x^3/3 + C`` -> ``x^3/3`` (the constant of integration is not part of the comparison)."""
    if isinstance(v, VA.Expr) and _CONSTANT.search(v.text):
        return VA.Expr(_CONSTANT.sub("", v.text), v.latex)
    return v


def _differ_by_constant(s, p) -> bool:
    import sympy
    d = sympy.simplify(s - p)
    if d == 0:
        return True
    pos = {x: sympy.Symbol(x.name, positive=True) for x in d.free_symbols}     # ln|x| against log(x)
    d = sympy.simplify(d.subs(pos))
    return all(sympy.simplify(sympy.diff(d, x)) == 0 for x in d.free_symbols)


# --- solution sets: inequalities, intervals, unions --------------------------------------------------------
_REL_TEXT = re.compile(r"<|>|≤|≥|\\[lg]eq?\b|\\[lg]eqslant|\\[lg]t\b|\\in\b|\\cup|\bInterval\b|\bUnion\b|^\s*[(\[].*\\infty")


def _relational(v) -> bool:
    return isinstance(v, VA.Expr) and bool(_REL_TEXT.search(v.text))


def _latex_relations(text: str):
    """A LaTeX solution set as a sympy Set over the reals: ``x > 3``, ``3 < x``, ``-1 \\le x < 2``,
    ``x < -1 \\text{ or } x > 2``, ``(3, \\infty)``, ``x \\in [1, 2) \\cup (3, \\infty)``; None when it cannot be read."""
    import sympy
    s = normalise_latex(text)
    for a, b in ((r"\\leqslant|\\leq?\b|≤", "<="), (r"\\geqslant|\\geq?\b|≥", ">="), (r"\\lt\b", "<"), (r"\\gt\b", ">")):
        s = re.sub(a, b, s)
    s = re.sub(r"^\s*[A-Za-z]\s*\\in\s*", "", s)
    parts = [q for q in re.split(r"\s*(?:\bor\b|\\cup|\\lor)\s*", s) if q.strip()]
    out = []
    for part in parts:
        inter = sympy.S.Reals
        for q in (x for x in re.split(r"\s*(?:\band\b|\\land)\s*", part) if x.strip()):
            m = re.fullmatch(r"\s*([(\[])\s*([^,]+?)\s*,\s*([^,]+?)\s*([)\]])\s*", q)
            if m:
                lo, hi = latex_sympy(m.group(2)), latex_sympy(m.group(3))
                if lo is None or hi is None:
                    return None
                inter = inter & sympy.Interval(lo, hi, m.group(1) == "(", m.group(4) == ")")
                continue
            toks = re.split(r"(<=|>=|<|>)", q)
            if len(toks) < 3:
                return None
            sides = [latex_sympy(t) for t in toks[0::2]]
            if any(x is None for x in sides):
                return None
            ops = {"<": sympy.Lt, ">": sympy.Gt, "<=": sympy.Le, ">=": sympy.Ge}
            rel = sympy.And(*[ops[o](a, b) for a, o, b in zip(sides, toks[1::2], sides[1:])])
            inter = inter & _as_set(rel)
        out.append(inter)
    return sympy.Union(*out) if out else None


def _as_set(e):
    import sympy
    if e is None:
        return None
    if isinstance(e, sympy.Set):
        return e
    if isinstance(e, sympy.logic.boolalg.Boolean) and len(e.free_symbols) == 1:
        return e.as_set()
    return None


def _same_set(stated, printed) -> tuple[bool, str]:
    def read(v):
        if isinstance(v, VA.Expr):
            if v.latex:
                return _latex_relations(v.text)
            t = v.text.replace("≤", "<=").replace("≥", ">=")
            return _as_set(python_sympy(t))
        return None
    a, b = read(stated), read(printed)
    if a is None or b is None:
        return False, "cannot read as a solution set"
    import sympy
    return bool(sympy.simplify(a.symmetric_difference(b)) == sympy.S.EmptySet), "solution set"


# --- matrices: entry by entry -----------------------------------------------------------------------------
def _is_matrix_text(v) -> bool:
    return isinstance(v, VA.Expr) and bool(re.match(r"\s*(?:Matrix|ImmutableMatrix|MutableDenseMatrix|"
                                                     r"ImmutableDenseMatrix)\(", v.text))


def _matrix_cells(v):
    """rows of cells (``values`` numbers or sympy objects) of a ``Mat`` or a printed sympy Matrix, else None."""
    if isinstance(v, VA.Mat):
        return [[to_value(x) for x in r] for r in v.rows]
    if _is_matrix_text(v):
        e = python_sympy(v.text)
        if e is None or not hasattr(e, "tolist"):
            return None
        return [[sympy_number(x) if sympy_number(x) is not None else x for x in r] for r in e.tolist()]
    return None


def _same_matrix(stated, printed, rule, tolerance) -> tuple[bool, str]:
    a, b = _matrix_cells(stated), _matrix_cells(printed)
    if a is None or b is None:
        if isinstance(stated, VA.Many) and b is not None and (len(b) == 1 or all(len(r) == 1 for r in b)):
            a = [[x] for x in stated.items] if all(len(r) == 1 for r in b) else [list(stated.items)]  # a vector
            a = [[to_value(x) for x in r] for r in a]
        else:
            return False, "not the same kind of value (a matrix against something else)"
    if len(a) != len(b) or any(len(r) != len(q) for r, q in zip(a, b)):
        return False, "matrix shapes differ"
    for r, q in zip(a, b):
        for x, y in zip(r, q):
            if x is None or y is None:
                return False, "matrix entry cannot be read"
            if _is_sympy(x) or _is_sympy(y):
                try:
                    import sympy
                    if sympy.simplify(_plain(sympy.sympify(_as_sympy(x))) - _plain(sympy.sympify(_as_sympy(y)))) != 0:
                        return False, "matrix entries differ"
                except Exception:                              # noqa: BLE001
                    return False, "matrix entry cannot be compared"
            elif not VA.same(x, y, rule, tolerance):
                return False, "matrix entries differ"
    return True, "matrix, entry by entry"


def _plain(e):
    """The same expression over assumption-free symbols (the LaTeX reader's are real, a printout's are not)."""
    import sympy
    return e.subs({x: sympy.Symbol(x.name) for x in getattr(e, "free_symbols", ())})


def _as_sympy(x):
    import sympy
    if isinstance(x, VA.Num):
        return sympy.Rational(x.value.numerator, x.value.denominator)
    if isinstance(x, VA.Cplx):
        return _as_sympy(x.re) + sympy.I * _as_sympy(x.im)
    return x


def target_sympy(stated):
    """The sympy object of a stated symbolic result (an expression with free symbols, or a matrix), else None."""
    try:
        import sympy
        if isinstance(stated, VA.Mat):
            cells = _matrix_cells(stated)
            if cells is None or any(x is None for r in cells for x in r):
                return None
            return sympy.Matrix([[_as_sympy(x) for x in r] for r in cells])
        if isinstance(stated, VA.Expr) and not _relational(stated):
            e = to_value(_drop_constant(stated))
            if _is_sympy(e) and e.free_symbols:
                return e
    except Exception:                                          # noqa: BLE001
        return None
    return None


def structurally_equal(a, b) -> bool:
    """The same expression as written after sympy's automatic evaluation (``3*x*x + 2`` is ``3*x**2 + 2``), over
    assumption-free symbols; not equivalence (``(x**2 - 1)/(x - 1)`` is not ``x + 1``)."""
    try:
        import sympy
        if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
            if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
                return False
            return all(structurally_equal(x, y) for x, y in zip(a, b))
        # rebuilt with sympy's automatic evaluation: the LaTeX reader leaves sums and products unevaluated
        pa, pb = (sympy.sympify(sympy.srepr(_plain(sympy.sympify(x)))) for x in (a, b))
        if pa == pb:
            return True
        na, nb = sympy_number(pa), sympy_number(pb)        # numeric entries of a matrix: 1/2 against 0.5
        return na is not None and nb is not None and VA.same(na, nb) is True
    except Exception:                                          # noqa: BLE001
        return False


# --- the Expression field: LaTeX that parses --------------------------------------------------------------
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[,.]?\s+(?:[A-Za-z]{1,}[,.]?\s+)[A-Za-z]{2,}(?![A-Za-z(])")
_RELATIONS_SPLIT = re.compile(r"(?<![<>!\\])=(?!=)|\\approx|\\equiv|\\neq?|\\[lg]eq?|<|>|≤|≥|\\pmod\s*\{[^{}]*\}|"
                              r"\\pmod\s*\d+|\\b?mod\b|\bmod\b|\\text\s*\{\s*(?:or|and)\s*\}|\\quad|,")


def expression_parses(expression: str) -> tuple[bool, str]:
    """The *Computation Expression* is a LaTeX expression: no prose (three words in a row outside ``\\text{}``), no
    stray ``$``, and every side of it parses (book macros read as symbols: the model may keep the passage's)."""
    e = (expression or "").strip()
    if not e:
        return True, ""
    if "$" in e.replace("\\$", "").strip("$ "):              # a stray "$" at an end is markup; inside, a wrap
        return False, "the expression holds '$' signs: text wrapped as math, not a LaTeX expression"
    bare = VA.strip_units(VA.clean_latex(e))
    if _PROSE.search(re.sub(r"\\[A-Za-z]+", " ", bare)):
        return False, f"the expression is prose, not LaTeX ({bare[:60]!r})"
    body = re.sub(r"\\([A-Za-z]+)", lambda m: "\\" + m.group(1) if m.group(1) in KNOWN_MACROS else " M ", bare)
    body = re.sub(r"\\begin\{[pbBvV]?matrix\}.*?\\end\{[pbBvV]?matrix\}", " M ", body, flags=re.S)
    body = re.sub(r"(\d+)_\{?\d+\}?", r"\1", body)                         # 1011_2: a base subscript
    # operators of calculus read as one symbol: d/dx, dy/dx, the partial derivatives
    body = re.sub(r"\\frac\s*\{\s*(?:d|\\partial)(?:\^\{?\d\}?)?\s*[A-Za-z]?\s*\}\s*\{\s*(?:d|\\partial)\s*[A-Za-z](?:\^\{?\d\}?)?\s*\}",
                  " M ", body)
    body = re.sub(r"\\[io]?int(?:_\{?[^{}\s]*\}?)?(?:\^\{?[^{}\s]*\}?)?|\\lim_\{[^{}]*\}|\\lim|\bd[a-z]\b|\\,", " ", body)
    sides = [x.strip() for x in _RELATIONS_SPLIT.split(body) if x and x.strip()]
    if not sides:
        return False, "the expression is empty once its relations are read"
    from latex2sympy2_extended import latex2sympy
    for side in sides[:12]:
        if len(side) > 400 or _TOO_BIG.search(side):
            continue
        try:
            latex2sympy(side)
        except Exception:                                      # noqa: BLE001 - unparsable LaTeX is the finding
            return False, f"the expression does not parse as LaTeX ({side[:60]!r})"
    return True, ""
