"""Is a block about *this passage*? The numbers it states and uses must be the passage's.

* **grounded** — the stated result appears in the passage as a *whole number token* (``98`` is not in ``1984``,
  ``2`` is not in ``24``); thousands separators (``2{,}340``, ``2\\,340``, ``2,340``) are read as one number, a
  passage value written rounded (``0.33`` for 1/3) counts, and a percent token grounds its fraction
  (``25%`` -> 0.25). Several stated values (``x = -1 or x = 6``) must each be there. A stated expression
  (``x^2+2x+1``) must appear as a LaTeX token sequence, or equal an equation side of the passage (symbolic).
  Without it a model can state and print its own misreading (``150*60 = 9000``) and still "verify".
* **operands** — ``input_literals``: which numeric literals of the code are numbers of the passage; the
  metamorphic check (``metamorphic``) perturbs exactly these, so "computed from the passage's inputs" is decided
  on them.
* **consistent** — the stated LaTeX expression, where it evaluates (``symbolic.latex_number``), equals the stated
  result under the same matching rule; cannot tell -> None.
* **reread_result** — the one repair (see ``verify``): the passage's own spelling of the printed value.

The symbolic parts call sympy: they run in the bounded worker (``bounded``), like everything that reads text.
"""
from __future__ import annotations

import re
from fractions import Fraction

from mathcode.translate import values as VA

# a whole number: not inside a longer number ("98" is not in "1984"); letters may follow ("5x", "3rd", "1011_2")
_TOKEN = re.compile(r"(?<![\d.])-?(?:\d+\.\d+|\d+)(?:[eE][-+]?\d+(?![A-Za-z]))?(?!\d|\.\d)(\s*\\?%)?")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}|(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|<<([^<>]+)>>|@@(.+?)@@", re.S)
_WORDS = {"half": Fraction(1, 2), "twice": 2, "double": 2, "triple": 3, "dozen": 12, "quarter": Fraction(1, 4),
          "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
          "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100}


def normalise_latex(s: str) -> str:
    """LaTeX without spacing, ``\\left``/``\\right``, ``$``; ``\\cdot``/``\\times`` as ``*`` (for text matching)."""
    s = VA.clean_latex(s)
    s = s.replace("\\cdot", "*").replace("\\times", "*")
    return re.sub(r"\s", "", s).rstrip(".")


def passage_values(text: str, words: bool = False) -> list[VA.Num]:
    """Every number token of ``text`` as ``values.Num`` (with the decimals written), fractions, percents as
    fractions too; with ``words``, number words (``twelve``, ``half``: what code writes as 12 and 0.5 — used for
    the code's operands, not for the stated result, which must be written as a number)."""
    text = VA.drop_thousands(text or "")[:50000]
    out: list[VA.Num] = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0).rstrip("%").rstrip("\\").strip()
        n = VA.number(tok)
        if n is None:
            continue
        out.append(n)
        if tok.startswith("-"):                               # "5-3" is not minus three: the magnitude too
            out.append(VA.Num(-n.value, n.decimals))
        if m.group(1):
            out.append(VA.Num(n.value / 100, None if n.exact else n.decimals + 2, False))
    for m in _FRAC.finditer(text):
        a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if int(b):
            out.append(VA.Num(Fraction(int(a), int(b))))
    for w in re.findall(r"[A-Za-z]+", text.lower()) if words else ():
        if w in _WORDS:
            out.append(VA.Num(Fraction(_WORDS[w])))
    return out


def passage_numbers(text: str) -> list[tuple[float, int]]:
    """(value, decimals written) of every number token (for reports)."""
    return [(float(n.value), n.decimals or 0) for n in passage_values(text)]


def _in_passage(x: VA.Num, nums: list[VA.Num]) -> bool:
    for v in nums:
        if v.value == x.value:
            return True
        if not v.exact and VA._num_same(v, x):             # the passage states it rounded: 0.33 for 0.333
            return True
        if not x.exact and VA._num_same(x, v):             # stated rounded from the passage's 3.14159
            return True
    return False


def _equation_sides(text: str) -> list[str]:
    sides = []
    for m in _MATH_SPAN.finditer(text or ""):
        body = next(g for g in m.groups() if g is not None)
        sides += [s for s in re.split(r"=|\\approx|\\equiv", body) if s.strip() and len(s) <= 200]
    return sides[:20]                      # each side is a symbolic parse: a bounded number of them


def grounded(result: str, passage: str) -> tuple[bool, str]:
    """(True, how) when the stated ``result`` is in ``passage``; (False, why not) otherwise."""
    result = (result or "").strip()
    if not result:
        return False, "no stated result"
    v = VA.read_stated(result)
    nums = passage_values(passage)
    items = v.items if isinstance(v, VA.Many) else (v,)
    if all(isinstance(x, (VA.Num, VA.Cplx)) for x in items):
        flat = [y for x in items for y in ((x.re, x.im) if isinstance(x, VA.Cplx) else (x,))]
        missing = [y for y in flat if not _in_passage(y, nums)
                   and not (y.percent and _in_passage(VA.Num(y.value / 100), nums))]
        if not missing:
            return True, "number"
        why = f"stated result {result[:60]!r} is not a number of the passage ({VA.describe(missing[0])} missing)"
    else:
        why = f"stated result {result[:60]!r} does not appear in the passage"
    nr = normalise_latex(VA.strip_units(result))
    if nr and len(nr) >= 2:
        np_ = normalise_latex(passage)
        for m in re.finditer(re.escape(nr), np_):
            before, after = np_[m.start() - 1:m.start()], np_[m.end():m.end() + 1]
            if not ((nr[0].isalnum() and (before.isalnum() or before == ".")) or (nr[-1].isalnum() and after.isalnum())):
                return True, "text"                            # whole tokens only: "98" is not in "1984"
    if isinstance(v, (VA.Expr, VA.Mat)):
        from mathcode.translate.symbolic import same
        for side in _equation_sides(passage):
            other = VA.read_stated(side) if isinstance(v, VA.Mat) else VA.Expr(side, latex=True)
            if same(v, other)[0]:                          # a matrix as bmatrix against the passage's pmatrix
                return True, "symbolic"
    return False, why


def input_literal(value, passage_nums: list[VA.Num] | None) -> bool:
    """Is a code literal (int/float) a number of the passage? (``None`` passage: every literal counts.)"""
    if passage_nums is None:
        return True
    x = VA.number(repr(value)) if isinstance(value, float) else VA.Num(Fraction(value))
    if x is None:
        return False
    x = VA.Num(abs(x.value), x.decimals)
    return any(v.value == x.value or (not v.exact and VA._num_same(v, x)) for v in passage_nums)


def consistent(expression: str, result: str, rule: str = "precision", tolerance: float = 0.01) -> tuple[bool | None, str]:
    """Whether the stated expression evaluates to the stated result: True, False, or None (cannot tell)."""
    from mathcode.translate.symbolic import latex_number, normalise_latex as plain
    x = VA.read_stated(result)
    if not isinstance(x, (VA.Num, VA.Cplx)) or not (expression or "").strip():
        return None, ""                                        # several values, or a symbolic result: cannot tell
    sides = [s for s in re.split(r"(?<![<>!\\])=(?!=)|\\approx", expression) if plain(s)]
    values = []
    for side in sides:
        if normalise_latex(side) == normalise_latex(result) or re.fullmatch(r"\s*[A-Za-z]\w*(?:_\{?\w+\}?)?\s*", side):
            continue
        if "%" in side and not re.search(r"\d\s*\\?%", side):
            continue
        v = latex_number(side)
        if isinstance(v, (VA.Num, VA.Cplx)):
            values.append((side.strip(), v))
    if not values:
        return None, ""
    for side, v in values:
        if VA.same(x, v, rule, tolerance):
            return True, ""
    side, v = values[0]
    return False, f"${side[:80]}$ evaluates to {VA.describe(v)}, not the stated {result[:40]}"


# a value stated as a result: right after "=" (not "<=", ">=", "!=", "=="), and not the start of a longer
# expression ("u=2t", "x = 3/4", "N = 2^{10}")
_STATED = re.compile(r"(?:(?<![<>!=])=(?!=)|\\approx|\\equiv)\s*\\?[$£€]?\s*(-?(?:\d+)(?:\.\d+)?"
                     r"|-?\\[dt]?frac\{-?\d+\}\{\d+\})(?!\.?\d|[a-zA-Z{(]|\s*(?:[*/^]|\\times|\\cdot))")
_OPERATION = re.compile(r"\d\s*(?:[-+*/^×÷·!]|\\times|\\cdot|\\div|\\bmod|mod)|\\(?:frac|dfrac|tfrac|sqrt|binom)|\d\s*\(")


def stated_values(passage: str) -> list[tuple[VA.Num, str]]:
    """Every value the passage states as the result of something (right after ``=``/``\\approx``), with the
    passage's own spelling."""
    out = []
    for m in _STATED.finditer(VA.drop_thousands(passage or "")):
        v = VA.read_stated(m.group(1))
        if isinstance(v, VA.Num):
            out.append((v, m.group(1)))
    return out


def reread_result(expression: str, printed, passage: str, rule: str = "precision", tolerance: float = 0.01) -> str:
    """The passage's spelling of the printed value when (a) the block's own expression is an operation that
    evaluates to that value and (b) the passage states that value as a result; else "".

    This keeps a block whose model copied the wrong number into *Computation Result* (measured on the demo:
    ``1^2+2*3^2`` stated as the chain's last value 3, code printing 19, the passage saying ``=19``) without
    trusting the model's statement: the value comes from the passage and the code must compute it."""
    from mathcode.translate.symbolic import latex_number
    if not isinstance(printed, VA.Num) or not (expression or "").strip():
        return ""
    sides = [sd for sd in re.split(r"=|\\approx", expression) if sd.strip() and _OPERATION.search(sd)]
    if not any(isinstance(v := latex_number(sd), VA.Num) and VA.same(v, printed, rule, tolerance) for sd in sides):
        return ""
    for v, spelled in stated_values(passage):
        if VA.same(v, printed, rule, tolerance):
            return spelled
    return ""


# --- the computation in the passage that states a result ------------------------------------------------
_SIDE_NUMBER = re.compile(r"\s*\\?[$£€]?\s*(-?(?:\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?|-?\\[dt]?frac\{-?\d+\}\{\d+\})")
_CHAIN_SPLIT = re.compile(r"&?=&?|\\approx|≈")
_CONTINUES = re.compile(r"\s*(?:[-+*/^×÷·(]|\\times|\\cdot|\\div|\\frac|\\pi|[a-zA-Z]\s*[\^(]|\d)")


def result_operands(passage: str, answers: list) -> list | None:
    """The numbers of the passage's own computations whose stated result is one of ``answers`` (``values.Num``):
    in ``$4 \\times 12 = 48$`` or ``<<4*12=48>>`` they are 4 and 12 (every side before the result of a chain).
    None when the passage states none of the answers as the result of an operation (then nothing is known about
    which numbers a translation should use)."""
    from mathcode.translate.passages import find_math
    text = VA.drop_thousands(passage or "")[:50000]
    spans = []
    for k, a, b in find_math(text):                 # plain arithmetic's span ends at its result's first digit
        if k == "arithmetic":
            b += len(re.match(r"[\d.,]*(?:\s*/\s*\d+)?", text[b:]).group(0))
        spans.append(text[a:b])
    found, ops = False, []
    for span in spans[:400]:
        body = span.strip("$").replace("<<", " ").replace(">>", " ")
        sides = _CHAIN_SPLIT.split(body)
        for i in range(1, len(sides)):
            m = _SIDE_NUMBER.match(sides[i])
            if not m or _CONTINUES.match(sides[i][m.end():]):
                continue
            v = VA.read_stated(m.group(1))
            if not isinstance(v, VA.Num) or not any(VA.same(a, v) or VA.same(v, a) for a in answers):
                continue
            before = " ".join(sides[:i])
            if not _OPERATION.search(before):
                continue
            found = True
            ops += passage_values(before, words=True)
    return ops if found else None


def among(x: VA.Num, values: list) -> bool:
    """``x`` (a code literal) is one of ``values`` — as written, in magnitude, or as a percent (15 for 0.15)."""
    cands = (abs(x.value), abs(x.value) / 100, abs(x.value) * 100)
    return any(abs(v.value) in cands or (not v.exact and VA._num_same(v, VA.Num(abs(x.value), x.decimals)))
               for v in values)


# --- the block's text: what goes into the pretraining data besides the code ------------------------------------
# words of the prompt's own vocabulary (and function words) say nothing about which passage a sentence is from
_NEUTRAL = frozenset("""the a an of to in on and or is are was were be been it its this that these those with for from by
as at so then than there their they we our you your he she his her them which what when where who how each every all
any some both given text numbers number values value calculation calculations computation result results condition
conditions needed facts fact following problem question step steps first second next total amount using use uses used
need needs has have had will would can could must should also only into over under more less per one two three
equation expression formula find found get gets gives give known let suppose""".split())
_WORD = re.compile(r"[A-Za-z]{3,}")


def _stems(text: str) -> set[str]:
    return {w.lower()[:5] for w in _WORD.findall(re.sub(r"\\[A-Za-z]+", " ", text or ""))
            if w.lower() not in _NEUTRAL}


def conditions_grounded(conditions: str, passage: str) -> tuple[bool, str]:
    """The block's *Conditions Needed* are facts of this passage: every number in them is a number of the passage,
    and its content words are mostly the passage's — not the worked example's (a small translator keeps "the area
    of the garden" from the prompt's example). Empty conditions carry nothing and pass."""
    from mathcode.translate.prompt import EXAMPLE_PASSAGE, EXAMPLE_REPLY
    c = (conditions or "").strip()
    if not c:
        return True, ""
    nums = passage_values(passage, words=True)
    c = re.sub(r"(?m)^\s*(?:[-*]\s*)?\(?\d{1,2}[.)]\s+", " ", c)              # "1. Given: ...": list numbers
    for m in _TOKEN.finditer(VA.drop_thousands(c)):
        n = VA.number(m.group(0).rstrip("%").rstrip("\\").strip())
        if n is not None and abs(n.value) not in (0, 1) and not _in_passage(VA.Num(abs(n.value), n.decimals), nums) \
                and not _in_passage(n, nums) and not (m.group(1) and _in_passage(VA.Num(n.value / 100), nums)):
            return False, f"the conditions state {m.group(0).strip()}, which is not a number of the passage"
    words, here = _stems(c), _stems(passage)
    if not words:
        return True, ""
    # a word of five letters or more that the worked example has and the passage has not ("garden", "metres")
    example_only = {w for w in (words & _stems(EXAMPLE_PASSAGE + " " + EXAMPLE_REPLY)) - here if len(w) >= 5}
    found = words & here
    if example_only:
        return False, (f"the conditions speak of the worked example ({', '.join(sorted(example_only)[:4])}), "
                       f"not of the passage")
    if len(found) < 0.34 * len(words):
        return False, f"the conditions' words ({', '.join(sorted(words - here)[:4])}) are not the passage's"
    return True, ""
