"""Phase 2 on math text as books write it: symbolic results, book LaTeX, the block's text, and the verifier's
hold-out classes (coincidental values, inequality forms, matrix forms, signed zero, an answer that is also an
operand). Every judged case goes through the kit's own path (parse.parse_reply -> real sandbox ->
translate.block_row -> verify.judge); the cases are our own, one or more per class."""
from __future__ import annotations

import pytest

from mathcode.translate import parse as PA, passages as PS, prompt as PR, verify as V
from mathcode.translate.execution import Sandbox
from translation_replies import reply
from mathcode.translate.translate import TranslateConfig, block_row


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=2) as b:
        yield b



def judged(box, passage, text):
    blocks, err = PA.parse_reply(text)
    assert not err and blocks
    b = blocks[0]
    run = box.run_many([b.code])[0]
    row = block_row({"id": "t#p0", "doc_id": "t", "source": "test", "text": passage}, b, run, TranslateConfig(), box)
    return row["outcome"], row


SYMPY = "import sympy as sp\nx = sp.symbols('x')\n"


# --- book LaTeX: which spans are computations with a stated result ------------------------------------------
@pytest.mark.parametrize("text", [
    r"The area is $\int_0^1 (x - x^2)\,dx \approx 0.17 \ \text{units}^2$.",           # "\ " before the unit
    r"So $A = \pi (1.5)^2 \approx 7.07\,\mathrm{m}^2$.",
    r"Together $2 \cdot 16/3 = 32/3$.",                                                 # a result written a/b
    r"Halving, $\frac{1}{2} \cdot \frac{4}{3} = \frac{2}{3}$.",
    r"The circle's area is $A = 12\pi \approx 37.7$.",                                  # a pi factor, approximated
    r"We get $e^{2} \approx 7.39$.",
    "The area is\n\\begin{align}\nA &= \\frac{1}{2} \\cdot 4 \\cdot 3 \\\\\n  &= 6 \\nonumber\n\\end{align}",
    "\\begin{eqnarray}\nA &=& 3 \\cdot 4 \\\\\n  &=& 12\n\\end{eqnarray}",
    r"Differentiating, $\frac{d}{dx}(x^3 + 2x) = 3x^2 + 2$.",                          # symbolic results
    r"$\int x^2\,dx = \frac{x^3}{3} + C$",
    r"$\lim_{x \to 0} \frac{\sin 3x}{x} = 3$",
    r"$f'(x) = 6x - 4$",
    r"Expanding, $(x+1)^2 - 1 = x^2 + 2x + 1 - 1 = x^2 + 2x$",                         # a rewrite the text announces
    r"We factor $x^4 + x^2 + 1 = (x^2 + x + 1)(x^2 - x + 1)$.",
    r"The roots are $x = \frac{-1 \pm \sqrt{5}}{2}$.",
    r"$AB = \begin{pmatrix}1 & 2\\3 & 4\end{pmatrix}\begin{pmatrix}0 & 1\\1 & 0\end{pmatrix} = \begin{pmatrix}2 & 1\\4 & 3\end{pmatrix}$",
    r"$A^{-1} = \begin{pmatrix}-2 & 1\\1.5 & -0.5\end{pmatrix}$",
])
def test_book_latex_computations_are_found(text):
    assert PS.find_computations(text), text


@pytest.mark.parametrize("text", [r"Let $f(x) = x^2 + 1$.", r"Solve $x^2 + 2y^2 = 3$.", r"The line $y = mx + b$.",
                                  r"Take $r = 2$.", r"The symbol $x$ alone.", r"$a^2 + b^2 = c^2$",
                                  r"$(x+1)^2 - 1 = x^2 + 2x$",                        # an identity, no rewrite announced
                                  r"At the minimum $f'(x) = 0$.", r"$f'(x) = 2q(x) + r'(x)$",
                                  r"$\frac{d}{dx} \theta(x) = \delta(x)$",          # functions the text names itself
                                  r"$P(n+1) = 2 P(n) (2n + 1)$"])
def test_definitions_and_equations_are_not_computations(text):
    assert not PS.find_computations(text), text


def test_a_passage_is_cut_at_a_boundary_and_never_before_its_result():
    long_line = ("The region under the parabola between the two intersection points is found by integrating the "
                 "difference of the two functions over the interval, which gives $\\int_0^2 (2x - x^2)\\,dx = 4/3$"
                 " square units. After that the text goes on about the next example at some length.")
    [p] = PS.split_document({"id": "d", "text": long_line}, max_passage_chars=200, unit="line")
    assert "= 4/3$" in p.text and p.text.endswith("square units. …")
    text = "He buys $3 \\times 4 = 12$ apples. Then he eats some. Then he goes home and sleeps for a long time."
    cut = PS.cut_at_boundary(text, 60)
    assert cut == "He buys $3 \\times 4 = 12$ apples. Then he eats some. …"
    display = "First $$2 \\cdot 3 = 6.$$ More words follow here and here and here."
    assert PS.cut_at_boundary(display, 25) == "First $$2 \\cdot 3 = 6.$$ …"      # not at the "." inside the display


def test_symbolic_passages_are_scored_and_get_the_sympy_prompt():
    s, have = PS.translatable_score(r"So $\frac{d}{dx}(x^3 + 2x) = 3x^2 + 2$.")
    assert s >= 0.8 and "one_call" in have
    s, have = PS.translatable_score(r"Here $\frac{d}{dx}\abs{x} = \sgn x$.")
    assert "standard_latex" not in have and s < 1.0
    assert PS.translatable_score("He pays 3 * 4 = 12 dollars.")[0] == 1.0            # numeric scoring unchanged
    sym = PR.build_messages(r"Integrating, $\int x^2\,dx = \frac{x^3}{3} + C$.")
    num = PR.build_messages(r"Its area is $12 \times 7 = 84$ square metres.")
    assert PR.SYMBOLIC in sym[-1]["content"] and PR.SYMBOLIC not in num[-1]["content"]


def test_book_macros_are_left_to_the_model_not_called_as_functions():
    from mathcode.translate.bounded import default
    # read as a function, \abs{x} would be a function "abs" of x, and the stated result would be "cannot tell" at
    # best, a wrong equivalence at worst: text with a book's own macro is never given a value by the reader
    assert default().call("compare_text", expected="\\abs{-3}", stdout="3\n")[0] is False
    assert default().call("compare_text", expected="\\vb{v} + 1", stdout="vb(v) + 1\n")[0] is False
    assert default().call("compare_text", expected="\\sqrt{9}", stdout="3\n")[0] is True


# --- the matching rule for the forms symbolic results are printed in ------------------------------------------
@pytest.mark.parametrize("stated,printed,ok", [
    ("x > 3", "3 < x", True), ("x > 3", "(3 < x) & (x < oo)", True), ("x > 3", "x >= 3", False),
    ("x \\ge 3", "Interval(3, oo)", True), ("(3, \\infty)", "Interval.open(3, oo)", True),
    ("x < -1 \\text{ or } x > 2", "((-oo < x) & (x < -1)) | ((2 < x) & (x < oo))", True),
    ("-1 \\le x < 2", "(-1 <= x) & (x < 2)", True), ("-1 \\le x < 2", "(-1 < x) & (x < 2)", False),
    ("x > 3", "3", False),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "Matrix([[1, 2], [3, 4]])", True),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "Matrix([[1, 3], [2, 4]])", False),
    ("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", "[[1 2]\n [3 4]]", True),
    ("\\left[\\begin{array}{cc} \\frac{1}{2} & 0 \\\\ 0 & 2 \\end{array}\\right]", "[[0.5 0. ]\n [0.  2. ]]", True),
    ("\\begin{pmatrix} x & 1 \\\\ 0 & 2x \\end{pmatrix}", "Matrix([[x, 1], [0, 2*x]])", True),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "[1, 2, 3, 4]", False),          # not a multiset of entries
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "[[4, 3], [2, 1]]", False),
    ("0", "-0.0", True), ("0", "5.551115123125783e-17", True), ("0", "0.001", False), ("-0", "0", True),
    ("3x^2 + 2", "3*x**2 + 2", True), ("3x^2 + 2", "3*x**2 + 1", False), ("x + 1", "x + 2", False),
    ("\\frac{x^3}{3} + C", "x**3/3", True), ("\\frac{x^3}{3} + C", "x**3/3 + 5", True),
    ("\\frac{x^3}{3}", "x**3/3 + 1", False), ("\\ln|x| + C", "log(x)", True), ("\\frac{x^3}{3} + C", "x**4/4", False),
    ("\\infty", "oo", True), ("\\infty", "inf", False), ("-\\infty", "oo", False),
    ("e^{2x}", "exp(2*x)", True), ("\\frac{1}{2}\\sin(2x)", "sin(2*x)/2", True),
    ("12\\pi \\approx 37.7", "37.69911184307752", True), ("12\\pi", "37.69911184307752", True),
    ("12\\pi", "37.7", False), ("\\frac{32}{3}", "10.666666666666666", True), ("32/3", "10.6667", True),
    ("32/3", "10.7", False),
])
def test_symbolic_matching_rule(stated, printed, ok):
    assert V.compare(stated, printed)[0] is ok, (stated, printed, V.compare(stated, printed))


# --- symbolic computations, translated and judged ------------------------------------------------------------
DERIV = "Differentiating, $\\frac{d}{dx}(x^3 + 2x) = 3x^2 + 2$."
INTEG = "Integrating term by term, $\\int (x^2 + 1)\\,dx = \\frac{x^3}{3} + x + C$."
SYMBOLIC_CORRECT = [
    (DERIV, "\\frac{d}{dx}(x^3 + 2x)", "3x^2 + 2", SYMPY + "print(sp.diff(x**3 + 2*x, x))"),
    ("We get $\\frac{d}{dx} \\sin x = \\cos x$.", "\\frac{d}{dx} \\sin x", "\\cos x", SYMPY + "print(sp.diff(sp.sin(x), x))"),
    (INTEG, "\\int (x^2 + 1)\\,dx", "\\frac{x^3}{3} + x + C", SYMPY + "print(sp.integrate(x**2 + 1, x))"),
    (INTEG, "\\int (x^2 + 1)\\,dx", "\\frac{x^3}{3} + x + C", SYMPY + "print(sp.integrate(x**2 + 1, x) + 7)"),
    ("So $\\lim_{x \\to 0} \\frac{\\sin 3x}{x} = 3$.", "\\lim_{x \\to 0} \\frac{\\sin 3x}{x}", "3",
     SYMPY + "print(sp.limit(sp.sin(3*x)/x, x, 0))"),
    ("Simplifying, $\\frac{x^2 - 1}{x - 1} = x + 1$.", "\\frac{x^2 - 1}{x - 1}", "x + 1",
     SYMPY + "print(sp.simplify((x**2 - 1)/(x - 1)))"),
    ("Expanding, $(x + 2)^2 = x^2 + 4x + 4$.", "(x + 2)^2", "x^2 + 4x + 4", SYMPY + "print(sp.expand((x + 2)**2))"),
    ("The area is $\\int_0^2 x^2\\,dx = 8/3$ square units.", "\\int_0^2 x^2\\,dx", "8/3",
     SYMPY + "print(sp.integrate(x**2, (x, 0, 2)))"),
    ("Solving $x^2 - 5x + 6 = 0$ gives $x = 2$ or $x = 3$.", "x^2 - 5x + 6 = 0", "x = 2 \\text{ or } x = 3",
     SYMPY + "print(sp.solve(x**2 - 5*x + 6, x))"),
]


@pytest.mark.parametrize("passage,expression,result,code", SYMBOLIC_CORRECT)
def test_correct_symbolic_blocks_are_verified(box, passage, expression, result, code):
    got, row = judged(box, passage, reply(expression, result, code))
    assert got == "verified", (row["reason"], row["got"])


SYMBOLIC_GAMED = [   # the result typed into the code, however it is written; or the wrong operation
    (DERIV, "3x^2 + 2", SYMPY + "print(3*x**2 + 2)", "hardcoded"),
    (DERIV, "3x^2 + 2", SYMPY + "f = x*3*x + 2\nprint(f)", "hardcoded"),
    (DERIV, "3x^2 + 2", SYMPY + "print(sp.sympify('3*x**2 + 2'))", "hardcoded"),
    (DERIV, "3x^2 + 2", "print('3*x**2 + 2')", "hardcoded"),
    (DERIV, "3x^2 + 2", SYMPY + "print(sp.expand(3*x**2 + 2))", "hardcoded"),
    ("We get $\\frac{d}{dx} \\sin x = \\cos x$.", "\\cos x", SYMPY + "print(sp.cos(x))", "hardcoded"),
    (INTEG, "\\frac{x^3}{3} + x + C", SYMPY + "print(x**3/3 + x)", "hardcoded"),
    (INTEG, "\\frac{x^3}{3} + x + C", SYMPY + "print(sp.integrate(x**3 + 1, x))", "wrong_result"),
    (DERIV, "3x^2 + 2", SYMPY + "print(sp.diff(x**3 + 2*x, x, 2))", "wrong_result"),
]


@pytest.mark.parametrize("passage,result,code,want", SYMBOLIC_GAMED)
def test_gamed_symbolic_blocks_are_not_verified(box, passage, result, code, want):
    got, row = judged(box, passage, reply("", result, code))
    assert got == want, (row["reason"], row["got"])


# --- hold-out class: coincidental values ------------------------------------------------------------------------
CLUB = "In 2019 the club had 12 members and 7 joined, so it had $12 + 7 = 19$ members by 2021."


@pytest.mark.parametrize("passage,result,code", [
    (CLUB, "19", "year = 2019\nprint(year % 100)"),                       # a date that ends in the answer
    (CLUB, "19", "start = 2019\nend = 2021\nprint(end - start + 17)"),    # two dates and a made-up offset
    (CLUB, "19", "year = 2021\nprint(year - 2002)"),
    ("On page 84 we read that the hall seats $12 \\times 7 = 84$ people.", "84", "page = 84\nprint(page * 1 + 0)"),
    ("Section 3.5 states: a 4 by 5 grid has $4 \\times 5 = 20$ cells.", "20", "section = 3.5\nprint(int(section * 6 - 1))"),
])
def test_a_typed_answer_that_coincides_with_an_unrelated_number_is_not_verified(box, passage, result, code):
    got, row = judged(box, passage, reply("", result, code))
    assert got in ("ungrounded", "hardcoded"), (got, row["reason"])


def test_the_same_passages_computed_from_their_operands_are_verified(box):
    assert judged(box, CLUB, reply("12 + 7", "19", "members = 12\njoined = 7\nprint(members + joined)"))[0] == "verified"
    hall = "On page 84 we read that the hall seats $12 \\times 7 = 84$ people."
    assert judged(box, hall, reply("12 \\times 7", "84", "rows = 12\nseats = 7\nprint(rows * seats)"))[0] == "verified"
    # a result the passage states in no operation: nothing says which numbers to use, the old checks decide
    assert judged(box, "The 4 boxes hold 12 each: 48 in all.", reply("4 \\times 12", "48", "print(4 * 12)"))[0] == "verified"


# --- hold-out class: the answer is also an operand, and the other term vanishes ----------------------------------
VELOCITY = "The velocity is $v(t) = -32t + 48$, so at launch $v(0) = -32(0) + 48 = 48$ feet per second."


@pytest.mark.parametrize("code", ["print(-32*0 + 48)", "t = 0\nprint(-32*t + 48)", "a = -32\nb = 48\nt = 0\nprint(a*t + b)"])
def test_an_answer_that_is_also_an_operand_is_computed(box, code):
    got, row = judged(box, VELOCITY, reply("-32 \\cdot 0 + 48", "48", code))
    assert got == "verified", row["reason"]


@pytest.mark.parametrize("passage,code", [
    (VELOCITY, "print(48)"),
    (VELOCITY, "t = 5\nprint(48 + 0 * t)"),
    ("We have $3 \\times 4 = 12$ and then $12 + 5 = 17$.", "a = 3\nprint(12 + 0 * a)"),   # 12 is an operand elsewhere
])
def test_a_typed_answer_is_still_typed_when_it_is_also_an_operand(box, passage, code):
    result = "48" if passage == VELOCITY else "12"
    assert judged(box, passage, reply("", result, code))[0] == "hardcoded"


# --- hold-out class: inequality forms ------------------------------------------------------------------------
@pytest.mark.parametrize("passage,result,code,want", [
    ("Solving $2x - 6 > 0$ gives $x > 3$.", "x > 3",
     "import sympy as sp\nx = sp.symbols('x', real=True)\nprint(sp.solve(2*x - 6 > 0, x))", "verified"),
    ("Solving $2x - 6 > 0$ gives $x > 3$.", "x > 3",
     "import sympy as sp\nx = sp.symbols('x')\nprint(sp.solve_univariate_inequality(2*x - 6 > 0, x, relational=False))",
     "verified"),
    ("Solving $x^2 - 1 > 0$ gives $x < -1$ or $x > 1$.", "x < -1 \\text{ or } x > 1",
     "import sympy as sp\nx = sp.symbols('x', real=True)\nprint(sp.solve(x**2 - 1 > 0, x))", "verified"),
    ("Solving $2x - 6 \\ge 0$ gives $x \\ge 3$.", "x \\ge 3",
     "import sympy as sp\nx = sp.symbols('x', real=True)\nprint(sp.solve(2*x - 6 > 0, x))", "wrong_result"),
    ("Solving $2x - 6 > 0$ gives $x > 3$.", "x > 3", "print('3 < x')", "hardcoded"),
])
def test_inequality_forms(box, passage, result, code, want):
    got, row = judged(box, passage, reply("", result, code))
    assert got == want, (row["reason"], row["got"])


# --- hold-out class: matrix forms ------------------------------------------------------------------------------
PRODUCT = ("The product is $\\begin{pmatrix}1 & 2\\\\3 & 4\\end{pmatrix}\\begin{pmatrix}0 & 1\\\\1 & 0\\end{pmatrix} = "
           "\\begin{pmatrix}2 & 1\\\\4 & 3\\end{pmatrix}$.")
PRODUCT_RESULT = "\\begin{pmatrix}2 & 1\\\\4 & 3\\end{pmatrix}"


@pytest.mark.parametrize("code,want", [
    ("import sympy as sp\nA = sp.Matrix([[1, 2], [3, 4]])\nB = sp.Matrix([[0, 1], [1, 0]])\nprint(A * B)", "verified"),
    ("import numpy as np\nA = np.array([[1, 2], [3, 4]])\nB = np.array([[0, 1], [1, 0]])\nprint(A @ B)", "verified"),
    ("A = [[1, 2], [3, 4]]\nB = [[0, 1], [1, 0]]\nprint([[A[0][0]*B[0][0] + A[0][1]*B[1][0], A[0][0]*B[0][1] + A[0][1]*B[1][1]],"
     " [A[1][0]*B[0][0] + A[1][1]*B[1][0], A[1][0]*B[0][1] + A[1][1]*B[1][1]]])", "verified"),
    ("import numpy as np\nA = np.array([[1, 2], [3, 4]])\nB = np.array([[0, 1], [1, 0]])\nprint(B @ A)", "wrong_result"),
    ("import sympy as sp\nA = sp.Matrix([[1, 2], [3, 4]])\nprint(sp.Matrix([[2, 1], [4, 3]]))", "hardcoded"),
    ("import numpy as np\nprint(np.array([[2, 1], [4, 3]]))", "hardcoded"),
])
def test_matrix_forms(box, code, want):
    got, row = judged(box, PRODUCT, reply("", PRODUCT_RESULT, code))
    assert got == want, (row["reason"], row["got"])


def test_a_matrix_stated_as_bmatrix_matches_a_sympy_printout(box):
    passage = PRODUCT.replace("pmatrix", "bmatrix")
    code = "import sympy as sp\nprint(sp.Matrix([[1, 2], [3, 4]]) * sp.Matrix([[0, 1], [1, 0]]))"
    assert judged(box, passage, reply("", PRODUCT_RESULT.replace("pmatrix", "bmatrix"), code))[0] == "verified"


# --- hold-out class: signed zero and float noise at zero -----------------------------------------------------------
FORCE = "The two forces cancel: $5 - 5 = 0$, so the net force is $-(5 - 5) = 0$ newtons."


@pytest.mark.parametrize("expression,code", [
    ("-(5 - 5)", "a = 5.0\nb = 5\nprint(-(a - b))"),                     # prints -0.0
    ("-(5 - 5)", "a = 5\nb = 5\nprint(-(a - b))"),
    ("5 - 5", "from fractions import Fraction\nprint(Fraction(5) - 5)"),
    ("0.1 \\cdot 5 + 0.2 \\cdot 5 - 0.3 \\cdot 5", "a = 5\nprint(0.1 * a + 0.2 * a - 0.3 * a)"),   # 2.2e-16
])
def test_signed_and_noisy_zeros_are_zero(box, expression, code):
    passage = FORCE + " Also $0.1 \\cdot 5 + 0.2 \\cdot 5 - 0.3 \\cdot 5 = 0$."
    got, row = judged(box, passage, reply(expression, "0", code))
    assert got == "verified", (row["reason"], row["got"], row["checks"])


def test_a_small_nonzero_value_is_not_zero(box):
    passage = "The error is $0.001 \\times 3 = 0.003$ and not $0$."
    assert judged(box, passage, reply("", "0", "e = 0.001\nprint(e * 3)"))[0] == "wrong_result"


# --- the block's text, which goes into the training data with the code -----------------------------------------
FIELD = "A rectangular field is 36 m long and 24 m wide, so its area is $36 \\times 24 = 864$ square metres."
FIELD_CODE = "length = 36\nwidth = 24\nprint(length * width)"


@pytest.mark.parametrize("conditions,expression,want", [
    ("The field is 36 m long and 24 m wide.", "36 \\times 24", "verified"),
    ("", "36 \\times 24", "verified"),
    ("1. Given: the field is 36 m long.\n2. Given: it is 24 m wide.", "36 \\times 24", "verified"),
    ("The area of the garden.", "36 \\times 24", "bad_text"),                      # the worked example's words
    ("The garden is 36 m long and 24 m wide.", "36 \\times 24", "bad_text"),
    ("The field is 36 m long and 25 m wide.", "36 \\times 24", "bad_text"),          # a number the passage lacks
    ("The field is 36 m long and 24 m wide.", "$$The area is 36 times 24$$$$", "bad_text"),   # prose as math
    ("The field is 36 m long and 24 m wide.", "the length times the width", "bad_text"),
    ("The field is 36 m long and 24 m wide.", "36 \\times (24", "bad_text"),         # does not parse
    ("The field is 36 m long and 24 m wide.", "\\text{Area} = 36 \\times 24", "verified"),
])
def test_the_blocks_text_is_checked(box, conditions, expression, want):
    got, row = judged(box, FIELD, reply(expression, "864", FIELD_CODE, conditions=conditions))
    assert got == want, (row["reason"], row["checks"])


def test_bad_text_is_its_own_outcome_and_counted_by_the_funnel():
    pytest.importorskip("pandas", reason="pandas is not installed (a dependency of the kit)")
    from mathcode.translate import figures as F
    assert "bad_text" in V.OUTCOMES and "bad_text" in V.NEW_RULES
    blocks = [{"source": "s", "outcome": o, "checks": {"output_matches": True, "text": o != "bad_text"}}
              for o in ("verified", "bad_text", "bad_text", "hardcoded")]
    t = F.outcomes(blocks).set_index("source")
    assert int(t.loc["s", "bad_text"]) == 2 and int(t.loc["s", "verified"]) == 1
    r = F.rule_removals(blocks).set_index("rule")
    assert int(r.loc["bad_text", "removes"]) == 2 and int(r.loc["bad_text", "fails"]) == 2


def test_a_result_restated_in_another_form_is_grounded_in_the_passage(box):
    # the model writes bmatrix where the passage has pmatrix, "3 < x" where it has "x > 3": the same value
    code = "import sympy as sp\nprint(sp.Matrix([[1, 2], [3, 4]]) * sp.Matrix([[0, 1], [1, 0]]))"
    assert judged(box, PRODUCT, reply("", PRODUCT_RESULT.replace("pmatrix", "bmatrix"), code))[0] == "verified"
    wrong = "\\begin{bmatrix}2 & 1\\\\4 & 4\\end{bmatrix}"
    assert judged(box, PRODUCT, reply("", wrong, code))[0] == "wrong_result"
    code = "import sympy as sp\nx = sp.symbols('x', real=True)\nprint(sp.solve(2*x - 6 > 0, x))"
    assert judged(box, "Solving $2x - 6 > 0$ gives $x > 3$.", reply("", "3 < x", code))[0] == "verified"
