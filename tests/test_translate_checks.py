"""The checks that make a verified block trustworthy: grounded in the passage, computed (not typed in),
consistent with its own expression — and that every rejection keeps its reason."""
from __future__ import annotations

import pytest

from mathcode.translate import parse as PA, verify as V
from mathcode.translate.execution import RunResult
from mathcode.translate.grounding import consistent, grounded


# --- hard-coding: is the printed value computed from the passage's numbers? (decided by re-running) -------
@pytest.fixture(scope="module")
def box():
    from mathcode.translate.execution import Sandbox
    with Sandbox(workers=2) as b:
        yield b


NUMBERS = "The garden is 12 m by 7 m (area 84); a pen costs 6.40; x is 3 and y is 5; 10 items; -5 degrees; 2 and 4."


def _judged(box, code, result=None, passage=NUMBERS):
    run = box.run(code)
    assert run.status == "ok", run.stderr
    return V.judge(PA.Block(index=0, result=result or run.stdout.strip().split()[-1], code=code), run,
                   passage=passage, sandbox=box)


@pytest.mark.parametrize("code", [
    "print(84)",
    "price = 6.40\nprint(price)",
    "x = 3\nprint(f'The answer is {x}')",
    "def f():\n    return 84\nprint(f())",
    "print(round(6.40, 2))",
    "a = 5\nb = a\nprint(b)",
    "r = 12 * 7\nprint(84)",                                  # computes, then prints a typed-in value
    "x = -5\nprint(x)",
    "print('{}'.format(84))",
    "def main():\n    c = 12\n    print(c)\nmain()",
    "length = 12\nwidth = 7\nresult = {'area': 84}\nprint(result['area'])",
])
def test_typed_in_values_are_hardcoded(box, code):
    v = _judged(box, code)
    assert v["outcome"] == "hardcoded" and v["checks"]["computed"] is False, v


@pytest.mark.parametrize("code", [
    "length = 12\nwidth = 7\nprint(length * width)",
    "outer = 12 * 7\ngarden = 3\nprint(outer - garden)",
    "x = 3\ny = x * 2\nprint(f'{y:.2f}')",
    "import math\nprint(math.sqrt(2))",
    "def area(l, w):\n    return l * w\nprint(area(12, 7))",
    "total = 0\nfor i in range(5):\n    total += i\nprint(total)",
    "print('Answer:', 12 * 7)",
    "import sympy as sp\nx = sp.symbols('x')\nprint(sp.expand((x + 2)**2))",
    "def main():\n    a, b = 3, 4\n    print(a * b)\nmain()",
    "values = [1, 2, 3]\nprint(sum(values))",
    "n = 10\nprint('{}'.format(n * 2))",
    "from fractions import Fraction\nprint(Fraction(3, 4) * 12)",
])
def test_computed_values_pass(box, code):
    run = box.run(code)
    out = run.stdout.strip()
    result = out.split(":")[-1].strip() if "sp." not in code else "x^2 + 4x + 4"
    v = _judged(box, code, result=result, passage=NUMBERS + f" It is {result}." if "sp." not in code
                else NUMBERS + " so $(x+2)^2 = x^2 + 4x + 4$.")
    assert v["checks"].get("computed") is True, v


def test_a_typed_in_answer_that_is_the_passage_number_is_named_as_such(box):
    """A rejection never says the code "uses no number of the passage" when the passage's number is in the code:
    it names the number (the stated result, typed in) and why it is no input. Reply of Qwen2.5-Coder-0.5B to a
    CHAMP solution (tests/fixtures/verify_labelled.jsonl)."""
    passage = ("3. We have the coefficient $C(10, 3)*y^3*(-1)^7=-120$ for the term $y^3$ in $(y-1)^10$.\n\n"
               "4. Thus, the coefficient $a_2$ for $y^2$ in $(1-(y-1)^10)/y$ is $-(-120)=120$.")
    v = _judged(box, "a2 = -(-120)\nprint(a2)", result="120", passage=passage)
    assert v["outcome"] == "hardcoded", v
    assert "uses no number of the passage" not in v["reason"] and "(120)" in v["reason"], v["reason"]
    # a snippet with no number of the passage at all still says so
    v = _judged(box, "print(5 * 9)", result="45", passage="Half of 90 is 45.")
    assert v["outcome"] in ("hardcoded", "ungrounded") and "(45)" not in v["reason"], v


# --- grounding: the stated result must be in the passage ------------------------------------------------
TRIP = ("A train covers 150 km at an average speed of 60 km/h, so the trip takes $150/60 = 2.5$ hours. "
        "Tickets cost \\$2,340 for the group, and $\\frac{3}{4}$ of the seats were taken, about 0.33 of them by children.")


@pytest.mark.parametrize("stated", ["2.5", "2.50", "2340", "\\$2,340", "\\frac{3}{4}", "0.75", "0.333", "150/60"])
def test_results_stated_in_the_passage_are_grounded(stated):
    assert grounded(stated, TRIP)[0], stated


@pytest.mark.parametrize("stated", ["9000", "-2.5", "90", "7"])
def test_misread_results_are_ungrounded(stated):
    ok, why = grounded(stated, TRIP)
    assert not ok and stated in why


def test_symbolic_results_are_grounded_by_an_equation_side():
    passage = "Expanding gives $(x+1)^2 = x^2 + 2x + 1$, and the roots of $x^2-2=0$ are $\\pm\\sqrt{2}$."
    assert grounded("x^{2}+2x+1", passage)[0]
    assert grounded("1 + 2x + x^2", passage)[0]
    assert not grounded("x^2 + 3x + 1", passage)[0]


# --- consistency: the stated expression evaluates to the stated result ---------------------------------
@pytest.mark.parametrize("expr,result,expected", [
    ("1^2+2*3^2", "3", False),                 # seen from Qwen: result 3, expression worth 19
    ("150 \\times 60", "2.5", False),
    ("12 \\times 7", "84", True),
    ("14 \\cdot 9 - 84", "42", True),
    ("\\frac{150}{60}", "2.5", True),
    ("t = \\frac{150}{60} = 2.5", "2.5", True),
    ("x^2 + 1", "10", None),                   # free symbols: cannot tell
    ("20\\% \\times 50", "10", True),           # a percent is /100
    ("20\\% \\times 50", "1000", False),
    ("", "5", None),
])
def test_expression_consistency(expr, result, expected):
    assert consistent(expr, result)[0] is expected


# --- judge: the first failing check names the outcome; every check is kept ------------------------------
def _block(result="84", code="print(12 * 7)", expression="12 \\times 7"):
    return PA.Block(index=0, result=result, code=code, expression=expression)


GARDEN = "The garden is 12 m by 7 m, so its area is 84 square metres."


def test_judge_rejects_with_its_reason():
    assert V.judge(_block(), RunResult("ok", "84\n"), passage=GARDEN)["outcome"] == "verified"
    v = V.judge(_block(code="print(84)"), RunResult("ok", "84\n"), passage=GARDEN)
    assert v["outcome"] == "hardcoded" and v["checks"]["computed"] is False and v["checks"]["grounded"] is True
    v = V.judge(_block(result="9000", code="print(150 * 60)", expression="150 \\times 60"),
                RunResult("ok", "9000\n"), passage=TRIP)
    assert v["outcome"] == "ungrounded" and v["checks"]["output_matches"]
    v = V.judge(_block(result="12", code="print(3 * 4)", expression="1^2+2*3^2"), RunResult("ok", "12\n"),
                passage="We get 3*4 = 12.")
    assert v["outcome"] == "inconsistent" and "19" in v["reason"]
    assert V.judge(_block(), RunResult("ok", "85\n"), passage=GARDEN)["outcome"] == "wrong_result"
    assert V.judge(_block(), RunResult("ok", "84\n"), passage=GARDEN, copied=True)["outcome"] == "copied"


@pytest.mark.parametrize("status,outcome", [("timeout", "timeout"), ("memory", "memory"), ("error", "error"),
                                            ("output_limit", "output_limit"), ("something_new", "error")])
def test_every_sandbox_status_but_ok_is_a_rejection(status, outcome):
    v = V.judge(_block(), RunResult(status, "84\n", "MemoryError"), passage=GARDEN)
    assert v["outcome"] == outcome and v["outcome"] != "verified"


# --- a wrong *Computation Result* re-read from the passage ------------------------------------------------
CHAIN = "To verify, we can find $1^2+2*3^2 mod 8=19 mod 8=3$."


def test_a_wrong_stated_result_is_re_read_from_the_passage_when_the_code_computes_it():
    v = V.judge(_block(result="3", code="print(1**2 + 2*3**2)", expression="1^2+2*3^2"), RunResult("ok", "19\n"),
                passage=CHAIN)
    assert v["outcome"] == "verified" and v["result_reread"] == "19" and v["checks"]["result_reread"]
    assert "re-read" in v["method"]


@pytest.mark.parametrize("block,stdout,passage,why", [
    (dict(result="3", code="print(19)", expression="1^2+2*3^2"), "19\n", CHAIN, "typed in"),
    (dict(result="3", code="print(1 + 2*3**2 + 1)", expression="1^2+2*3^2+1"), "20\n", CHAIN, "20 is not stated"),
    (dict(result="32", code="slices = 33\nprint(slices)", expression="33"), "33\n",
     "She sliced it into 33 pieces; 3 + 13 + 16 = 32.", "expression is no operation"),
    (dict(result="3", code="print(4 * 5 - 1)", expression="2*3^2"), "19\n", CHAIN, "expression is 18, not 19"),
    (dict(result="9000", code="print(150 * 60)", expression="150 \\times 60"), "9000\n",
     "It drives 150 km at 60 km/h, so it takes 150/60 = 2.5 hours.", "misread"),
    (dict(result="3", code="print(1 + 1)", expression="1+1"), "2\n", "Let u=2t and x = 2^{10}.", "2 starts an expression"),
    (dict(result="3", code="print(0.001 + 0.0023)", expression="0.001+0.0023"), "0.0033\n", "so x^2-2=0 and 3",
     "0.0033 is not the passage's 0"),
    (dict(result="3", code="print(3 + 4)", expression="3+4"), "7\n", "for every a >= 7 we get 3", "7 is a bound"),
])
def test_re_reading_never_rescues_a_block_the_passage_does_not_back(block, stdout, passage, why):
    v = V.judge(_block(**block), RunResult("ok", stdout), passage=passage)
    assert v["outcome"] != "verified" and not v["result_reread"], why


def test_a_result_written_as_an_equation_is_read_by_its_last_side():
    assert V.compare("16 - 32 - 2 = -18", "-18\n")[0] and V.compare("r = 16 - 32 - 2 = -18", "-18\n")[0]
    assert not V.compare("16 - 32 - 2 = -18", "-14\n")[0]


@pytest.mark.parametrize("result,code,expression,stdout,passage", [
    ("x = 3, y = 4", "print((3 + 4, 4))", "x+y", "(7, 4)\n", "we get x = 3, y = 4 here"),          # a list
    ("x_1 = -1, x_2 = 6", "print(5 + 1)", "x", "6\n", "the roots are x_1 = -1, x_2 = 6"),          # one of two
    ("x = -1 or x = 6", "print(5 + 1)", "x", "6\n", "so x = -1 or x = 6"),                       # alternatives
    ("150 \\times 60 = 2.5", "print(150 * 60)", "150 \\times 60", "9000\n", "150 \\times 60 = 2.5 hours"),
])
def test_the_last_side_rule_never_takes_one_value_of_a_list_or_a_disagreeing_equation(result, code, expression,
                                                                                     stdout, passage):
    v = V.judge(_block(result=result, code=code, expression=expression), RunResult("ok", stdout), passage=passage)
    assert v["outcome"] != "verified", v


def test_odd_numbers_never_crash_the_judge():
    for result, stdout in (("x = \\frac{1}{0}", "2\n"), ("5", "1" + "0" * 400 + "\n"), ("\\frac{3}{0}", "inf\n")):
        assert V.judge(_block(result=result, code="print(1 + 1)", expression="1+1"), RunResult("ok", stdout),
                       passage="x = \\frac{1}{0} and 5")["outcome"] != "verified"


def test_line_passages_hold_one_step_and_exponent_tails_are_not_computations():
    from mathcode.translate import passages as PS
    doc = {"id": "d", "source": "s", "text": "Question: a kiwi in 33 pieces.\nSolution: Her cousin ate 3 + 10 = 13 slices."
                                             "\nHer brother ate 13 + 3 = 16 slices.\nThey ate 3 + 13 + 16 = 32 slices."}
    ps = PS.split_document(doc, unit="line", max_passage_chars=200, max_passages=5)
    assert [p.text[len(p.context):].strip() for p in ps] == doc["text"].splitlines()[1:]
    assert PS.find_computations("Determine k: 128*k**2 - 24 = 0") == []
    assert PS.find_computations("Her cousin ate 3 + 10 = 13 slices.") != []
