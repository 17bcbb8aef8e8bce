"""Values out of text, and when two values are the same — plain Python only, linear in the text, bounded input.

Why its own module: the judge compares what a snippet *printed at run time* with what the model *stated*, and
both are untrusted text. Everything here is regular expressions, ``int``/``Fraction``/``complex`` and a
size-capped ``ast.literal_eval`` (which never evaluates ``**``), so it cannot hang; whatever needs sympy or
math-verify (``\\sqrt{3}``, ``2*pi``, ``x**2 + 1``) is left as an expression for ``symbolic`` (which runs only
inside the bounded worker, ``bounded``).

Matching rule (``same``), "precision" (the default):
  * an exact stated value (an integer, ``\\frac{3}{4}``, ``3/4``) equals a printed value when the printed value is
    exactly it (integers compared as integers, never through floats), or is a float within float noise
    (relative 1e-9), or is the value correctly rounded to the decimals printed with at least 4 significant
    digits (``0.3333`` for 1/3, not ``0.3``);
  * a stated decimal is a rounded value: it equals any printed value that rounds to it at the decimals written
    (``3.14`` for 3.14159; ``0.0045`` does not accept 0.0059);
  * complex numbers part by part; several values (``x = -1 or x = 6``, ``(1, 2)``) as multisets;
  * ``inf``/``nan`` never match anything.
  "paper" (``rule="paper"``): MathCoder2's |difference| <= tolerance for two plain numbers (kept as an option
  for reproducing the paper's filter; it accepts 0.0059 for 0.0045).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_TEXT = 1000          # characters of one printed value / stated result that are read at all


@dataclass(frozen=True)
class Num:
    """A real number as written: ``value`` exact (decimal strings are read exactly); ``decimals`` = the digits
    written after the point (None for integers and fractions, i.e. an exact statement)."""
    value: Fraction
    decimals: int | None = None
    percent: bool = False

    @property
    def exact(self) -> bool:
        return self.decimals is None


@dataclass(frozen=True)
class Cplx:
    re: Num
    im: Num


@dataclass(frozen=True)
class Many:
    """Several values: compared as a multiset ("x = -1 or x = 6", "{1, 2}", "2, 3"), or in order when stated as
    a tuple ``(3, 4)`` (a point, an ordered pair)."""
    items: tuple
    ordered: bool = False


@dataclass(frozen=True)
class Mat:
    """A matrix (two or more rows of equal length): compared entry by entry, never as a multiset. ``rows`` hold
    values (``Num``, ``Cplx``, ``Expr``)."""
    rows: tuple

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0]) if self.rows else 0

    def flat(self) -> "Many":
        return Many(tuple(x for r in self.rows for x in r), ordered=True)


@dataclass(frozen=True)
class NonFinite:
    text: str


@dataclass(frozen=True)
class Expr:
    """Text that needs a symbolic reader (LaTeX from the model, or a sympy/Python printout)."""
    text: str
    latex: bool = False


@dataclass(frozen=True)
class Unreadable:
    why: str


@dataclass
class Printed:
    """The final value a snippet printed, or why there is none to judge."""
    value: object = None
    text: str = ""
    why: str = ""


_INT = re.compile(r"[-+]?\d+")
_DEC = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_NONFINITE = re.compile(r"[-+]?(?:inf(?:inity)?|nan|oo|zoo|-?∞)", re.I)
_SEP_GROUPS = re.compile(r"(?<![\d.])(\d{1,3})((?:(?:,|\{,\}|\\,|\\ |\u2009|\u202f|')\d{3})+)(?![\d])")


def drop_thousands(s: str) -> str:
    """``2{,}340``, ``2\\,340``, ``2,340`` (groups of exactly three digits) -> ``2340``."""
    return _SEP_GROUPS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), s)


def number(tok: str, percent: bool = False) -> Num | None:
    """An integer, a decimal (exact, with its written decimals) or ``a/b`` from a bare token."""
    tok = tok.strip().replace("−", "-")
    if len(tok) > 400:
        return None
    try:
        if _INT.fullmatch(tok):
            return Num(Fraction(int(tok)), None, percent)
        if _DEC.fullmatch(tok):
            mant = tok.lower().split("e")[0]
            dec = len(mant.split(".")[1]) if "." in mant else 0
            exp = int(tok.lower().split("e")[1]) if "e" in tok.lower() else 0
            if abs(exp) > 400:
                return None
            return Num(Fraction(tok), max(0, dec - exp) if ("." in mant or exp < 0) else None, percent)
        m = re.fullmatch(r"([-+]?\d+)\s*/\s*(\d+)", tok)
        if m and int(m.group(2)):
            return Num(Fraction(int(m.group(1)), int(m.group(2))), None, percent)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def as_float(v) -> float | None:
    try:
        return float(v.value) if isinstance(v, Num) else None
    except OverflowError:
        return None


# --- what a snippet printed ------------------------------------------------------------------------------
_RELATION = re.compile(r"<=?|>=?|≤|≥|\\[lg]eq?\b|\\[lg]t\b|\bInterval\b|\bUnion\b")
_FUNCS = frozenset("sqrt exp log sin cos tan asin acos atan sinh cosh tanh pi oo Abs".split())
_LABEL = re.compile(r"^[^\d\n]{0,80}?(?:[:=]|\bis\b|\bare\b|\bequals\b|\bequal to\b)\s*(?=\S)", re.I)
_UNIT_TAIL = re.compile(r"(?<=[\d)\]])\s*(?:%|[A-Za-z$£€°²³][A-Za-z$£€°²³ ./^-]{0,40})\.?$")
_PY_COMPLEX = re.compile(r"\(?\s*([-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?)?)\s*([-+])?\s*(\d+(?:\.\d*)?(?:e[-+]?\d+)?)?j\s*\)?",
                         re.I)


def final_printed(stdout: str) -> Printed:
    """The value a snippet answered with: its last printed line (a numpy/sympy array may span lines).

    Earlier lines that carry numbers make the output a list of candidates, not an answer: such an output is
    not read as its last value (``why`` says so)."""
    lines = [ln.strip() for ln in (stdout or "").splitlines() if ln.strip()]
    if not lines:
        return Printed(why="printed nothing")
    k = len(lines) - 1
    last = lines[k]
    if last.endswith("]") and last.count("[") < last.count("]"):     # a numpy matrix printed over lines
        j, depth = k, last.count("]") - last.count("[")
        while j > 0 and depth > 0 and k - j < 50:                    # back to the line that opens it
            j -= 1
            depth -= lines[j].count("[") - lines[j].count("]")
        if depth == 0 and lines[j].startswith("["):
            k, last = j, " ".join(lines[j:])
    earlier = [ln for ln in lines[:k] if re.search(r"\d", ln)]
    if earlier:
        return Printed(text=last[:200], why=f"printed {len(earlier) + 1} lines with numbers, not one result")
    if len(last) > MAX_TEXT:
        return Printed(text=last[:200], why=f"printed line of {len(last)} characters is too long to judge")
    v = read_printed(last)
    if isinstance(v, Unreadable):
        return Printed(text=last, why=v.why)
    return Printed(value=v, text=last)


def read_printed(line: str):
    """One printed line as a value: Python/numpy/sympy printing, with an optional label or unit around it."""
    s = drop_thousands(line.strip())                       # f"{x:,}" prints 2,340 (a list prints "2, 340")
    if _RELATION.search(s) and re.search(r"[A-Za-z]", s) and len(s) <= MAX_TEXT:
        return Expr(s)                                     # "3 < x", "(3 < x) & (x < oo)": a set, read symbolically
    body = _strip_label(s)
    v = _python_value(body)
    if v is not None:
        return v
    body2 = _UNIT_TAIL.sub("", body).strip().lstrip("$£€").strip()
    body2 = drop_thousands(body2)
    v = _python_value(body2)
    if v is not None:
        return v
    nums = re.findall(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", drop_thousands(s))
    if not nums:
        if _NONFINITE.fullmatch(body2):
            return NonFinite(body2)
        return Expr(body2) if body2 and re.search(r"[A-Za-z(]", body2) else Unreadable(f"no value in {s[:80]!r}")
    if re.fullmatch(r"[A-Za-z_ ]*", re.sub(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", "", body2)) and len(nums) > 1:
        return Unreadable(f"several numbers in one printed line: {s[:80]!r}")
    if re.search(r"[*/^()]|sqrt|pi|\bI\b|\bE\b|\bexp\b|log|sin|cos|tan|[a-zA-Z]\s*\*\*|\*\*", body2):
        return Expr(body2)
    if re.search(r"[-+]", body2) and all(len(t) <= 2 or t in _FUNCS for t in re.findall(r"[A-Za-z_]\w*", body2)):
        return Expr(body2)                                 # "x + 1", "2 - y": an expression in symbols, not a number
    if len(nums) == 1 and re.fullmatch(r"[^\d]*", s.replace(nums[0], "", 1)):
        return number(nums[0], percent="%" in s) or Unreadable(f"number too long: {s[:40]!r}")
    return Unreadable(f"several numbers in one printed line: {s[:80]!r}")


def _strip_label(s: str) -> str:
    # "x = 2, y = 3" -> keep whole (several named values); "The area is 84 m" -> "84 m"
    if len(re.findall(r"[A-Za-z_]\w*\s*=", s)) > 1 or s[:1] in "[({":
        return s
    m = _LABEL.match(s)
    return s[m.end():].strip() if m else s


def _python_value(s: str):
    """Numbers, complex, lists/tuples/sets/dicts of them, numpy arrays, ``Fraction``/``array(...)`` reprs."""
    s = s.strip().rstrip(".") if not re.fullmatch(r"[-+]?\d+\.", s.strip()) else s.strip()
    if not s or len(s) > MAX_TEXT:
        return None
    if _NONFINITE.fullmatch(s):
        return NonFinite(s)
    n = number(s)
    if n is not None:
        return n
    m = re.fullmatch(r"(?:Fraction|Rational)\((-?\d+),\s*(\d+)\)", s)
    if m and int(m.group(2)):
        return Num(Fraction(int(m.group(1)), int(m.group(2))))
    m = re.fullmatch(r"(?:np\.|numpy\.)?(?:array|float64|int64|float32|int32|Integer|Float|Matrix|ImmutableMatrix|"
                     r"MutableDenseMatrix|ImmutableDenseMatrix)\((.*)\)", s, re.S)
    if m:
        return _python_value(m.group(1).split(", dtype")[0])
    if "j" in s.lower() and _PY_COMPLEX.fullmatch(s):
        return _complex(s)
    if re.fullmatch(r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?\s*[-+]\s*\d+(?:\.\d*)?(?:e[-+]?\d+)?\*?I", s) or \
            re.fullmatch(r"[-+]?\d+(?:\.\d*)?\*?I", s):
        return _complex(s.replace("*I", "j").replace("I", "j"))
    if s[0] in "[({" and s[-1] in "])}":
        s = re.sub(r"(?:np|numpy)\.(?:float|int|complex)\d*\(([^()]*)\)", r"\1", s)   # numpy 2 scalar reprs in lists
        inner = s
        if s[0] == "[" and "," not in s:                     # numpy: [3. 2.] / [1 2 3] / [[1 2] [3 4]]
            inner = re.sub(r"(?<=[\d.\]])\s+(?=[-+\d.\[])", ", ", s)
        if re.search(r"\{[^{}]*[A-Za-z_]\w*\s*:", s):          # sympy solve dicts {x: 2, y: 3}, [{x: 2, y: 3}]
            inner = re.sub(r"[A-Za-z_]\w*\s*:", "", s).replace("{", "[").replace("}", "]")
        try:
            lit = ast.literal_eval(inner)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        return _from_literal(lit)
    if re.fullmatch(r"(?:[A-Za-z_]\w*\s*=\s*[-+]?[\d.]+(?:e[-+]?\d+)?\s*[,;]?\s*(?:and\s+)?)+", s):
        vals = [number(x) for x in re.findall(r"=\s*([-+]?[\d.]+(?:e[-+]?\d+)?)", s)]
        return Many(tuple(vals)) if vals and all(vals) else None
    if re.fullmatch(r"[-+]?[\d.]+(?:\s*,\s*[-+]?[\d.]+)+", s):
        vals = [number(x) for x in s.split(",")]
        return Many(tuple(vals)) if all(vals) else None
    return None


def _complex(s: str):
    try:
        c = complex(s.replace(" ", ""))
    except ValueError:
        return None
    return Cplx(_from_float(c.real), _from_float(c.imag))


def _from_float(x: float) -> Num:
    r = repr(float(x))
    n = number(r)
    if n is None:
        return Num(Fraction(x), 17)
    if n.decimals == 1 and r.endswith(".0"):
        return Num(n.value, None)                          # 5.0 from a complex print: integral, not a rounding
    return n


def _from_literal(lit):
    if isinstance(lit, bool):
        return None
    if isinstance(lit, int):
        return Num(Fraction(lit))
    if isinstance(lit, float):
        if lit != lit or lit in (float("inf"), float("-inf")):
            return NonFinite(repr(lit))
        return number(repr(lit))
    if isinstance(lit, complex):
        return Cplx(_from_float(lit.real), _from_float(lit.imag))
    if isinstance(lit, list) and len(lit) >= 2 and all(isinstance(r, (list, tuple)) for r in lit) \
            and len({len(r) for r in lit}) == 1 and lit[0]:               # [[1, 2], [3, 4]]: a matrix
        rows = [tuple(_from_literal(x) for x in r) for r in lit]
        if all(isinstance(x, (Num, Cplx)) for r in rows for x in r):
            return Mat(tuple(rows))
        return None
    if isinstance(lit, (list, tuple, set, frozenset)):
        items = []
        for x in lit:
            v = _from_literal(x)
            if v is None:
                return None
            if isinstance(v, Mat):
                v = v.flat()
            if isinstance(v, Many):
                items.extend(v.items)
            else:
                items.append(v)
        return Many(tuple(items))
    if isinstance(lit, dict):
        return _from_literal(list(lit.values()))
    return None


# --- what the model stated --------------------------------------------------------------------------------
_TEXT_UNIT = re.compile(r"\\(?:text|mathrm|textrm|mbox|operatorname)\s*\{[^{}]*\}(?:\s*\^\s*\{?[23]\}?)?")
_ALT = re.compile(r"\\text\s*\{\s*(?:or|and)\s*\}|\\(?:quad|qquad)|\bor\b|\band\b|;|\\lor")


def clean_latex(s: str) -> str:
    """Spacing, thousands separators, ``\\left``/``\\right``, ``\\dfrac`` and dollar signs out of a LaTeX value."""
    s = (s or "").replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\displaystyle", "").replace("−", "-")
    s = drop_thousands(s)
    s = re.sub(r"\\[!,;:> ]|~|\\quad|\\qquad", " ", s)
    s = s.replace("\\$", "").replace("$", "").replace("£", "").replace("€", "")
    return re.sub(r"\s+", " ", s).strip().rstrip(".").strip()


def strip_units(s: str) -> str:
    """Units written next to a number: ``18\\,\\text{m}``, ``84 square metres``, ``25\\%`` (percent kept as %)."""
    s = _TEXT_UNIT.sub(lambda m: " or " if re.fullmatch(r"\\text\s*\{\s*or\s*\}", m.group(0).strip()) else " ", s)
    s = s.replace("\\%", "%").replace("^\\circ", "").replace("\\circ", "").replace("°", "")
    return re.sub(r"\s+", " ", s).strip()


def read_stated(result: str):
    """The stated result as a value: a number (with its precision), ``a/b``, ``\\frac{a}{b}``, ``a + bi``,
    several values (``x = -1 or x = 6``, ``2, 3``), or an ``Expr`` for the symbolic reader. The last side of a
    chain (``x = 84``) is the value; ``\\approx`` marks a rounded value."""
    s = (result or "").strip()
    if len(s) > MAX_TEXT:
        return Unreadable("stated result too long")
    if re.fullmatch(r"\s*(?:[A-Za-z]\s*\\in\s*)?[(\[][^,()\[\]]*,[^,()\[\]]*[)\]](?:\s*\\cup\s*[(\[][^,()\[\]]*,[^,()\[\]]*[)\]])*\s*",
                    s) and ("\\infty" in s or "\\in" in s or "\\cup" in s or (s.strip()[0] + s.strip()[-1]) in ("[)", "(]")):
        return Expr(s, latex=True)                          # an interval (3, \\infty), [1, 2): a set, read symbolically
    m = _MATRIX.search(s)
    if m and not re.search(r"[\d\w]", _MATRIX.sub("", s.split("=")[-1]).replace("\\left", "").replace("\\right", "")):
        return stated_matrix(m.group(2))
    s = clean_latex(s)
    s = re.sub(r"^\\boxed\{(.*)\}$", r"\1", s)
    s = re.sub(r"\\text\s*\{\s*(or|and)\s*\}", r" \1 ", s)
    if s.count("\\pm") == 1 and "\\mp" not in s:            # a \pm b: the two values a + b and a - b
        left, right = s.split("\\pm")
        a = re.split(r"(?<![<>!=\\])=(?!=)", left)[-1].strip()
        b = right.strip()
        if b and not re.search(r"[=,;]", b):
            return Many((Expr(f"{a} + ({b})" if a else f"{b}", latex=True),
                         Expr(f"{a} - ({b})" if a else f"-({b})", latex=True)))
    parts = [p.strip() for p in re.split(r"\s*(?:\\text\s*\{\s*or\s*\}|\bor\b|\band\b|;|\\quad|\\lor)\s*", s) if p.strip()]
    if len(parts) == 1 and re.search(r"[A-Za-z]\w*\s*=.*,\s*[A-Za-z]\w*\s*=", s):
        parts = [p.strip() for p in s.split(",") if p.strip()]
    if len(parts) > 1:
        vals = [_stated_one(p) for p in parts]
        if all(isinstance(v, (Num, Cplx)) for v in vals):
            return Many(tuple(vals))
        return Expr(s, latex=True)
    ordered = bool(re.fullmatch(r"\(.*,.*\)", s))
    s2 = re.sub(r"^\\\{(.*)\\\}$", r"\1", s)
    s2 = re.sub(r"^\[(.*)\]$|^\((.*,.*)\)$", lambda m: m.group(1) or m.group(2), s2)
    if "," in s2 and not re.search(r"\\frac|\{", s2):
        vals = [_stated_one(p) for p in s2.split(",") if p.strip()]
        if vals and all(isinstance(v, (Num, Cplx)) for v in vals):
            return Many(tuple(vals), ordered)
    return _stated_one(s)


_MATRIX = re.compile(r"\\begin\{([pbB]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*?)\\end\{\1\}", re.S)


def stated_matrix(body: str):
    """``1 & 2 \\\\ 3 & 4`` (the inside of ``pmatrix``/``bmatrix``/``array``) as a ``Mat``; a one-row or one-column
    matrix as an ordered ``Many`` (a vector); ``Unreadable`` when rows differ in length."""
    rows = [r for r in re.split(r"\\\\(?:\[[^]]*\])?", body) if r.strip() and not re.fullmatch(r"\s*\\hline\s*", r)]
    cells = [[_stated_one(clean_latex(c.replace("\\hline", ""))) for c in r.split("&")] for r in rows]
    if not cells or len({len(r) for r in cells}) != 1:
        return Unreadable("matrix rows of different lengths")
    if len(cells) == 1 or len(cells[0]) == 1:
        return Many(tuple(x for r in cells for x in r), ordered=True)
    return Mat(tuple(tuple(r) for r in cells))


def _stated_one(s: str):
    s = s.strip()
    approx = bool(re.search(r"\\approx|≈|\\sim(?!eq)|^(?:about|approximately|approx\.?|around|roughly|nearly)\b", s, re.I))
    s = re.sub(r"^(?:about|approximately|approx\.?|around|roughly|nearly)\s+", "", s, flags=re.I)
    sides = [p.strip() for p in re.split(r"(?<![<>!=\\])=(?!=)|\\approx|≈|\\equiv", s) if p.strip()]
    if not sides:
        return Unreadable("empty stated result")
    last = strip_units(sides[-1])
    if _NONFINITE.fullmatch(last) or last in ("\\infty", "-\\infty", "+\\infty"):
        return NonFinite(last)
    percent = last.endswith("%")
    body = last.rstrip("%").strip()
    if re.match(r"^[-+]?[\d.]", body):                       # trailing unit words; unambiguous (no backtracking blow-up)
        body = re.sub(r"\s*[a-zA-Z]{2,}(?:\s+[a-zA-Z]+)*(?:\^?\{?[23]\}?)?$", "", body)
    n = number(body.replace(" ", ""), percent)
    if n is not None:
        return Num(n.value, n.decimals if n.decimals is not None or not approx else 0, percent)
    m = re.fullmatch(r"(-?)\\frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}", body.replace(" ", ""))
    if m and int(m.group(3)):
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return Num(-v if m.group(1) else v)
    m = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)\s*\\(?:times|cdot)\s*10\^\{?(-?\d+)\}?", body)
    if m:
        base = number(m.group(1))
        e = int(m.group(2))
        if base is not None and abs(e) < 400:
            dec = (base.decimals or 0) - e
            return Num(base.value * Fraction(10) ** e, dec if base.decimals is not None or approx else None)
    c = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)?\s*(?:([-+])\s*(\d+(?:\.\d+)?)?\s*)?(?:\\cdot\s*)?\\?(?:i|\\mathrm\{i\}|j)",
                     body.replace(" ", ""))
    if c and (c.group(1) or c.group(2) or c.group(3) or body.replace(" ", "") in ("i", "-i")):
        if c.group(2):
            re_, im = number(c.group(1) or "0"), number((c.group(2) + (c.group(3) or "1")).replace("+", ""))
        else:
            re_, im = Num(Fraction(0)), number((c.group(1) or "1") if c.group(1) not in ("-", "+") else c.group(1) + "1")
        if re_ is not None and im is not None:
            return Cplx(re_, im)
    if re.search(r"[A-Za-z\\^*/+()!]|\d\s*-", body):           # an expression (76^2, 3 \cdot 4): read symbolically
        return Expr(sides[-1] if len(sides) == 1 or not re.fullmatch(r"[A-Za-z]\w*(?:_\{?\w+\}?)?", sides[0])
                    else sides[-1], latex=True)
    return Unreadable(f"cannot read {s[:60]!r}")


# --- equality ---------------------------------------------------------------------------------------------
def _num_same(s: Num, p: Num, rule: str = "precision", tolerance: float = 0.01) -> bool:
    if rule == "paper":
        return abs(s.value - p.value) <= Fraction(tolerance).limit_denominator(10 ** 12) or \
            abs(s.value - p.value) <= Fraction(1, 10 ** 9) * max(abs(s.value), abs(p.value))
    if s.value == p.value:
        return True
    diff = abs(s.value - p.value)
    if not s.exact:                                      # a rounded statement: anything that rounds to it
        return diff <= Fraction(1, 2) * Fraction(10) ** -s.decimals * (1 + Fraction(1, 10 ** 9))
    if p.exact:                                           # exact vs exact: integers equal or not; other exact
        if s.value.denominator == 1 == p.value.denominator:   # values (a symbolic value to 30 digits) agree to 1e-12
            return False
        return diff <= Fraction(1, 10 ** 12) * max(abs(s.value), abs(p.value))
    if s.value.denominator == 1 and abs(s.value) >= 10 ** 15:
        return False                                      # a float cannot certify a 16-digit integer
    if s.value == 0:                                      # relative noise has no scale at 0: 0.1 + 0.2 - 0.3
        return abs(p.value) <= Fraction(1, 10 ** 9)       # printed 5.55e-17 (and -0.0) is a computed zero
    if diff <= Fraction(1, 10 ** 9) * max(abs(s.value), abs(p.value)):
        return True                                       # float noise
    if p.decimals < 0 or p.decimals > 400:
        return False
    sig = len(str(abs(p.value.numerator * 10 ** p.decimals // p.value.denominator)).lstrip("0"))
    return sig >= 4 and diff <= Fraction(1, 2) * Fraction(10) ** -p.decimals


def same(stated, printed, rule: str = "precision", tolerance: float = 0.01) -> bool | None:
    """True/False when both sides are plain values; None when a symbolic reader is needed (``Expr``)."""
    if isinstance(stated, NonFinite) and isinstance(printed, NonFinite):
        # a limit that diverges: sympy's own ``oo`` for a stated \\infty, same sign; a float inf/nan never
        sign = lambda t: "-" if t.strip().startswith("-") else "+"
        return printed.text.strip().lstrip("+") in ("oo", "-oo") and \
            stated.text.strip().lstrip("+") in ("\\infty", "-\\infty", "∞", "-∞") and sign(stated.text) == sign(printed.text)
    if isinstance(stated, (NonFinite, Unreadable)) or isinstance(printed, (NonFinite, Unreadable)):
        return False
    if has_expr(stated) or has_expr(printed):
        return None
    if isinstance(stated, Mat) or isinstance(printed, Mat):
        if isinstance(stated, Mat) and isinstance(printed, Mat):
            return stated.shape == printed.shape and all(same(a, b, rule, tolerance) for a, b in
                                                         zip(stated.flat().items, printed.flat().items))
        if isinstance(printed, Mat) and isinstance(stated, Many):   # a vector stated, a column printed
            return same(stated, printed.flat(), rule, tolerance)
        return False
    if isinstance(printed, Many) and len(printed.items) == 1 and not isinstance(stated, Many):
        printed = printed.items[0]
    if isinstance(stated, Many) and len(stated.items) == 1 and not isinstance(printed, Many):
        stated = stated.items[0]
    if isinstance(stated, Num) and isinstance(printed, Num):
        if stated.percent and not printed.percent:         # 25% computed as 25 or as 0.25
            return _num_same(stated, printed, rule, tolerance) or \
                _num_same(Num(stated.value / 100, None if stated.exact else stated.decimals + 2), printed, rule, tolerance)
        return _num_same(stated, printed, rule, tolerance)
    if isinstance(stated, Cplx) or isinstance(printed, Cplx):
        s = stated if isinstance(stated, Cplx) else Cplx(stated, Num(Fraction(0))) if isinstance(stated, Num) else None
        p = printed if isinstance(printed, Cplx) else Cplx(printed, Num(Fraction(0))) if isinstance(printed, Num) else None
        if s is None or p is None:
            return False
        return _num_same(s.re, p.re, rule, tolerance) and _num_same(s.im, p.im, rule, tolerance)
    if isinstance(stated, Many) and isinstance(printed, Many):
        if len(stated.items) != len(printed.items) or len(stated.items) > 64:
            return False
        if stated.ordered:
            return all(same(a, b, rule, tolerance) for a, b in zip(stated.items, printed.items))
        left = list(printed.items)
        for s in stated.items:                             # multiset match (values are few)
            hit = next((k for k, p in enumerate(left) if same(s, p, rule, tolerance)), None)
            if hit is None:
                return False
            left.pop(hit)
        return True
    return False


def has_expr(v) -> bool:
    return isinstance(v, Expr) or (isinstance(v, Many) and any(has_expr(x) for x in v.items)) or \
        (isinstance(v, Mat) and any(has_expr(x) for r in v.rows for x in r))


def describe(v) -> str:
    if isinstance(v, Num):
        return str(v.value) if v.exact else f"{float(v.value)} (±{0.5 * 10 ** -v.decimals:g})"
    if isinstance(v, Many):
        return "{" + ", ".join(describe(x) for x in v.items) + "}"
    if isinstance(v, Cplx):
        return f"{describe(v.re)} + {describe(v.im)}i"
    if isinstance(v, Mat):
        return "matrix[" + "; ".join(", ".join(describe(x) for x in r) for r in v.rows) + "]"
    return getattr(v, "text", getattr(v, "why", str(v)))
