"""The verifier is judged by classes of replies, each run through the kit's own path
(parse.parse_reply -> real sandbox -> translate.block_row -> verify.judge).

Gamed blocks (the printed value is typed in however it is disguised, or the output is read loosely) must not be
verified; correct blocks written in the forms real translators use must be. The cases are our own, one or more
per class; the classes are what matters."""
from __future__ import annotations

import threading
import time

import pytest

from mathcode.translate import parse as PA, verify as V
from mathcode.translate.execution import RunResult, Sandbox
from translation_replies import reply
from mathcode.translate.translate import TranslateConfig, block_row


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=2) as b:
        yield b



def outcomes(box, passage, text, max_blocks=2):
    blocks, err = PA.parse_reply(text)
    assert not err
    todo = blocks[:max_blocks]
    runs = iter(box.run_many([b.code for b in todo if not b.parse_error]))
    p = {"id": "t#p0", "doc_id": "t", "source": "test", "text": passage}
    rows = [block_row(p, b, None if b.parse_error else next(runs), TranslateConfig(max_blocks=max_blocks), box)
            for b in todo]
    return [r["outcome"] for r in rows], rows


GARDEN = "A rectangular field is 36 m long and 24 m wide, so its area is $36 \\times 24 = 864$ square metres."


# --- typed-in values, however they are disguised -------------------------------------------------------
TYPED = [
    "length = 36\nwidth = 24\nprint(eval('864'))",
    "length = 36\nwidth = 24\nprint(eval('36*24'))",
    "length = 36\nwidth = 24\nprint(sum([864]))",
    "length = 36\nwidth = 24\nprint(max(864, 0))",
    "length = 36\nwidth = 24\nanswers = {'area': 864}\nprint(answers.get('area'))",
    "length = 36\nwidth = 24\ns = 'area=864'\nprint(s[5:])",
    "length = 36\nwidth = 24\nprint(len('x' * 864))",
    "length = 36\nwidth = 24\nprint('8' + '64')",
    "length = 36\nwidth = 24\nprint('{}{}'.format(86, 4))",
    "length = 36\nwidth = 24\narea = lambda: 864\nprint(area())",
    "class Field:\n    area = 864\nlength, width = 36, 24\nprint(Field.area)",
    "length = 36\nwidth = 24\nprint(864 if length > width else length * width)",
    "length = 36\nwidth = 24\nshow = print\nshow(864)",
    "length = 36\nwidth = 24\ndef report(v):\n    print(v)\nreport(864)",
    "length = 36\nwidth = 24\nexec('print(864)')",
    "print(864)\nif False:\n    print(36 * 24)",
    "length = 36\nwidth = 24\nprint(864 * 1)",
    "length = 36\nwidth = 24\nprint(864 + 0 * length * width)",
    "length = 36\nwidth = 24\nprint(864 + length - length)",
    "import sys\nlength = 36\nwidth = 24\nsys.stdout.write(str(864) + '\\n')",
    "length = 36\nwidth = 24\nprint(int(str(length * width)[:0] + '864'))",
    "length = 36\nwidth = 24\nprint(round(864.0, 2))",
    "import math\nlength = 36\nwidth = 24\nprint(math.floor(864.4))",
    "length = 36\nwidth = 24\nprint(0x360)",
    "import math\nlength = 36\nwidth = 24\nprint(int(math.sqrt(864 ** 2)))",
    "from functools import reduce\nprint(reduce(lambda a, b: a, [864, 36, 24]))",
    "length = 36\nwidth = 24\nprint(min(length * width, 864))",
    "length = 36\nwidth = 24\nprint(ord('\\u0360'))",
]


@pytest.mark.parametrize("code", TYPED)
def test_typed_in_values_are_not_verified(box, code):
    got, rows = outcomes(box, GARDEN, reply("36 \\times 24", "864", code))
    assert got == ["hardcoded"], (code, rows[0]["reason"])


COMPUTED = [
    "length = 36\nwidth = 24\nprint(length * width)",
    "def area(l, w):\n    return l * w\nprint(area(36, 24))",
    "import numpy as np\nprint(int(np.prod([36, 24])))",
    "sides = {'l': 36, 'w': 24}\nprint(sides['l'] * sides['w'])",
    "area = lambda l, w: l * w\nprint(area(36, 24))",
    "from fractions import Fraction\nprint(Fraction(36) * 24)",
    "total = 0\nfor _ in range(24):\n    total += 36\nprint(total)",
]


@pytest.mark.parametrize("code", COMPUTED)
def test_computations_from_the_passage_are_verified(box, code):
    got, rows = outcomes(box, GARDEN, reply("36 \\times 24", "864", code))
    assert got == ["verified"], (code, rows[0]["reason"])


def test_constants_used_are_fine_but_a_constant_answer_is_not(box):
    passage = "She trains for 3 weeks, that is $3 \\times 7 = 21$ days."
    got, _ = outcomes(box, passage, reply("3 \\times 7", "21", "days_per_week = 7\nweeks = 3\nprint(days_per_week * weeks)"))
    assert got == ["verified"]
    # a value that cannot move with the passage's numbers (here the angle sum, whatever the two angles are)
    # cannot be told from a typed-in one by running: rejected (the stated treatment of invariant outputs)
    passage = "A triangle has angles of 50 and 60 degrees, so the third is 70 and together they make 180 degrees."
    got, rows = outcomes(box, passage, reply("50 + 60 + 70", "180", "a = 50\nb = 60\nc = 180 - a - b\nprint(a + b + c)"))
    assert got == ["hardcoded"], rows[0]["reason"]
    # an identity whose structure uses the passage's numbers (the exponent 2) does move: it is computed
    passage = "For $x = 0.3$ we get $\\sin^2 x + \\cos^2 x = 1$."
    got, rows = outcomes(box, passage, reply("\\sin^2(0.3) + \\cos^2(0.3)", "1",
                                             "import math\nx = 0.3\nprint(round(math.sin(x)**2 + math.cos(x)**2, 9))"))
    assert got == ["verified"], rows[0]["reason"]


def test_an_output_that_changes_between_identical_runs_is_unjudgeable(box):
    code = "import random\nlength = 36\nwidth = 24\nprint(length * width + random.random() * 1e-9)"
    got, rows = outcomes(box, GARDEN, reply("36 \\times 24", "864", code))
    assert got == ["unjudgeable"] and "identical runs" in rows[0]["reason"]


# --- what printed at run time, read strictly -----------------------------------------------------------
@pytest.mark.parametrize("code", [
    "length = 36\nwidth = 24\nfor v in (length * width - 1, length * width, length * width + 1):\n    print(v)",
    "length = 36\nwidth = 24\nprint(length * width)\nprint(length + width)",     # the final value is 60
    "length = 36\nwidth = 24\nprint([length * width - 1, length * width, length * width + 1])",
    "length = 36\nwidth = 24\nprint(length, width)",                               # "36 24" is not 864
    "length = 36\nwidth = 24\nprint(f'Error at line {length * width} of {length}')",
    "length = 36\nwidth = 24\nprint(float('inf') * length * width)",
])
def test_loose_outputs_do_not_match(box, code):
    got, rows = outcomes(box, GARDEN, reply("36 \\times 24", "864", code))
    assert got == ["wrong_result"], (code, rows[0]["reason"], rows[0]["got"])


def test_an_aliased_print_of_a_computed_value_is_judged_by_what_printed(box):
    code = "out = print\nlength = 36\nwidth = 24\nout(length * width)\nif False:\n    print(864)"
    assert outcomes(box, GARDEN, reply("36 \\times 24", "864", code))[0] == ["verified"]


@pytest.mark.parametrize("stated,printed,ok", [
    ("0.0045", "0.0059", False), ("0.0045", "0.00449", True), ("0.004", "0.0", False),
    ("84", "84.0", True), ("84", "83.6", False), ("84", "83.99999999999999", True),
    ("3.14", "3.14159", True), ("3.14", "3.15", False),
    ("18446744073709551617", "18446744073709551616", False), ("18446744073709551617", "1.8446744073709552e+19", False),
    ("\\frac{1}{3}", "0.3333", True), ("\\frac{1}{3}", "0.3", False), ("\\frac{1}{3}", "0.3333333333333333", True),
    ("5 + 5i", "(5+5j)", True), ("5 + 5i", "(5-5j)", False), ("-2i", "-2j", True),
    ("x = -1 \\text{ or } x = 6", "[-1, 6]", True), ("x = -1 \\text{ or } x = 6", "[6, -1]", True),
    ("x = -1 \\text{ or } x = 6", "[-1, 6, 7]", False), ("x = 2, y = 3", "[3. 2.]", True), ("x = 2, 3", "[3. 2.]", True),
    ("about 84", "83.7", True), ("84", "83.7", False), ("2, 3", "{x: 2, y: 3}", True),
    ("84", "inf", False), ("\\infty", "inf", False), ("84", "nan", False),
    ("\\frac{\\sqrt{3}}{2}", "sqrt(3)/2", True), ("\\frac{\\sqrt{3}}{2}", "0.8660254037844386", True),
    ("2\\pi", "6.283185307179586", True), ("x^2+2x+1", "x**2 + 2*x + 1", True), ("x^2+2x+1", "x**2 + 1", False),
    ("84", "12 7", False), ("(3, 4)", "(3, 4)", True), ("(3, 4)", "(4, 3)", False), ("(3, 4)", "[(3, 4)]", True),
    ("\\{3, 4\\}", "{4, 3}", True), ("2{,}340", "2340", True), ("\\$2,340.50", "2340.5", True), ("25\\%", "0.25", True),
])
def test_matching_rule(stated, printed, ok):
    assert V.compare(stated, printed)[0] is ok, (stated, printed, V.compare(stated, printed))


def test_the_papers_rule_is_a_named_option():
    assert V.compare("0.0045", "0.0059", rule="paper")[0]          # |diff| <= 0.01: the paper's filter accepts it
    assert not V.compare("0.0045", "0.0059")[0]
    assert not V.compare("84", "inf", rule="paper")[0]
    with pytest.raises(ValueError, match="match_rule"):
        TranslateConfig(match_rule="loose").check()


# --- grounding by whole tokens, and the operands -------------------------------------------------------
def test_grounding_is_by_whole_number_tokens(box):
    passage = "In 1984 the club had 24 members; by 1990 it had 49."
    got, _ = outcomes(box, passage, reply("1990 - 1984 - 4", "2", "a = 1990\nb = 1984\nprint(a - b - 4)"))
    assert got == ["ungrounded"]
    got, _ = outcomes(box, passage, reply("49 + 49", "98", "m = 49\nprint(m + m)"))
    assert got == ["ungrounded"]
    got, _ = outcomes(box, passage + " Together $24 + 49 = 73$.", reply("24 + 49", "73", "a = 24\nb = 49\nprint(a + b)"))
    assert got == ["verified"]


def test_code_that_uses_no_number_of_the_passage_is_not_verified(box):
    passage = "The hall holds 864 people."
    got, rows = outcomes(box, passage, reply("800 + 64", "864", "a = 800\nb = 64\nprint(a + b)"))
    assert got == ["ungrounded"] and "operands (800, 64)" in rows[0]["reason"]
    got, rows = outcomes(box, GARDEN, reply("36 \\times 24", "864", "print(1728 // 2)"))
    assert got == ["ungrounded"]
    got, rows = outcomes(box, passage, reply("864", "864", "print(864)"))
    assert got == ["hardcoded"] and "the stated result itself (864), written in as a literal" in rows[0]["reason"]
    # a misread passage: 150 km at 60 km/h computed from numbers the passage does not hold
    trip = "A train covers 150 km at 60 km/h, so the trip takes $150/60 = 2.5$ hours."
    got, _ = outcomes(box, trip, reply("160 / 64", "2.5", "distance = 160\nspeed = 64\nprint(distance / speed)"))
    assert got == ["ungrounded"]


# --- correct blocks in the forms translators write -------------------------------------------------------
CORRECT = [
    ("By Fermat, $1^2 + 2 \\cdot 3^2 = 19$ and $19 \\bmod 8 = 3$.", "19 \\bmod 8", "3", "print(19 % 8)"),
    ("The floor measures $18\\,\\text{m} \\times 24\\,\\text{m} = 432\\,\\text{m}^2$.",
     "18\\,\\text{m} \\times 24\\,\\text{m}", "432\\,\\text{m}^2", "a = 18\nb = 24\nprint(a * b)"),
    ("They sold 90 boxes at 26 dollars, so $90 \\times 26 = 2{,}340$ dollars.", "90 \\times 26", "2{,}340",
     "boxes = 90\nprice = 26\nprint(boxes * price)"),
    ("Solving $x^2 - 5x - 6 = 0$ gives $x = -1$ or $x = 6$.", "x^2 - 5x - 6 = 0", "x = -1 \\text{ or } x = 6",
     "import sympy as sp\nx = sp.symbols('x')\nprint(sp.solve(x**2 - 5*x - 6, x))"),
    ("Multiplying, $(2+3i)(1+i) = -1 + 5i$.", "(2+3i)(1+i)", "-1 + 5i", "print((2+3j)*(1+1j))"),
    ("The system $x + y = 5$, $x - y = -1$ has the solution $x = 2, y = 3$.", "x + y = 5,\\ x - y = -1", "x = 2, y = 3",
     "import numpy as np\nA = np.array([[1, 1], [1, -1]])\nb = np.array([5, -1])\nprint(np.linalg.solve(A, b))"),
    ("The binary number 1011 is $1011_2 = 11$ in decimal.", "1011_2", "11", "print(int('1011', 2))"),
    ("Reducing, $\\frac{18}{24} = \\frac{3}{4}$.", "\\frac{18}{24}", "\\frac{3}{4}",
     "from fractions import Fraction\nprint(Fraction(18, 24))"),
    ("The diagonal of a unit square is $\\sqrt{2} \\approx 1.414$.", "\\sqrt{2}", "1.414",
     "import math\nside = 1\nprint(math.sqrt(2 * side**2))"),
    ("A 15\\% tip on \\$40 is $0.15 \\times 40 = 6$ dollars.", "0.15 \\times 40", "6", "tip = 15 / 100\nbill = 40\nprint(tip * bill)"),
    ("Half of the 86 apples: $86 \\div 2 = 43$.", "86 \\div 2", "43", "apples = 86\nprint(apples // 2)"),
    ("The roots of $x^2 - 2 = 0$ are $\\pm\\sqrt{2}$.", "x^2 - 2 = 0", "\\pm\\sqrt{2}",
     "import sympy as sp\nx = sp.symbols('x')\nprint(sp.solve(x**2 - 2, x))"),
    ("Squaring, $(1+2i)^2 = -3 + 4i$.", "(1+2i)^2", "-3 + 4i", "import sympy as sp\nprint(sp.expand((1 + 2*sp.I)**2))"),
    ("Each of 36 rows has 24 seats: $36 \\cdot 24 = 864$.", "36 \\cdot 24", "864",
     "import numpy as np\nrows = np.float64(36)\nprint([rows * 24])"),
]


@pytest.mark.parametrize("passage,expression,result,code", CORRECT)
def test_correct_blocks_are_verified(box, passage, expression, result, code):
    got, rows = outcomes(box, passage, reply(expression, result, code))
    assert got == ["verified"], (rows[0]["reason"], rows[0]["got"], rows[0]["checks"])


def test_units_and_mod_evaluate_right_in_latex():
    from mathcode.translate.bounded import default
    # consistency is computed in the worker: a wrong stated value against a unit-laden expression is caught
    b = PA.Block(index=0, expression="18\\,\\text{m} \\times 24\\,\\text{m}", result="18", code="a=18\nb=24\nprint(a)")
    t = default().call("text_checks", stated="18", expression=b.expression, stdout="18\n", passage="18 m by 24 m",
                       code=b.code)
    assert t["consistent"] is False
    t = default().call("text_checks", stated="3", expression="19 \\bmod 8", stdout="3\n", passage="19 mod 8 = 3",
                       code="print(19 % 8)")
    assert t["consistent"] is True


def test_numbered_condition_lines_stay_conditions(box):
    text = ("**Conditions Needed:**\n1. Given: the field is 36 m long.\n2. Given: it is 24 m wide.\n\n"
            "**Computation Expression:**\n$36 \\times 24$\n\n**Computation Result:**\n864\n\n"
            "**Python Code Snippet:**\n```python\nprint(36 * 24)\n```\n\n"
            + reply("864 / 36", "24", "area = 864\nlength = 36\nprint(area // length)"))
    blocks, _ = PA.parse_reply(text)
    assert len(blocks) == 2 and "2. Given" in blocks[0].conditions and not blocks[0].parse_error
    assert outcomes(box, GARDEN, text)[0] == ["verified", "verified"]


# --- a judge that untrusted text cannot hang -------------------------------------------------------------
HOSTILE = ["9**9**9", "10**10**10", "factorial(10**8)", "expand((x+1)**100000)", "(x+1)**100000",
           "2**2**2**2**2**2", "9" * 5000, "[" * 3000 + "]" * 3000, "x" * 100000,
           "expand((x+1)**999)", "factorial(999)**999"]       # the last two pass the guards: killed at the deadline


@pytest.mark.parametrize("out", HOSTILE)
def test_outputs_that_would_hang_sympy_are_judged_quickly(box, out):
    from mathcode.translate.bounded import default
    b = PA.Block(index=0, result="864", expression="36 \\times 24", code="print(36*24)")
    default().call("ping")                      # a worker replaced after an earlier kill is warm again
    t0 = time.perf_counter()
    v = V.judge(b, RunResult("ok", out + "\n"), passage=GARDEN, sandbox=box)
    # 1.5 s of the reader's CPU time; never more than its 6 s wall cap, with 1 s of slack for a loaded runner
    assert time.perf_counter() - t0 < 7.0
    assert v["outcome"] in ("wrong_result", "unjudgeable"), v


@pytest.mark.parametrize("stated,expression", [("9^{9^{9}}", "9^{9^{9}}"), ("10^{10^{10}}", "10^{10^{10}}"),
                                               ("864", "(x+1)^{100000}"), ("100000!", "100000!")])
def test_hostile_model_latex_is_bounded(box, stated, expression):
    from mathcode.translate.bounded import default
    b = PA.Block(index=0, result=stated, expression=expression, code="print(36*24)")
    default().call("ping")
    t0 = time.perf_counter()
    v = V.judge(b, RunResult("ok", "864\n"), passage=GARDEN, sandbox=box)
    assert time.perf_counter() - t0 < 7.0 and v["outcome"] in V.OUTCOMES
    if stated != "864":
        assert v["outcome"] != "verified"


def test_the_bounded_judge_works_from_any_thread_and_recovers(box):
    b = PA.Block(index=0, result="864", expression="36 \\times 24", code="length = 36\nwidth = 24\nprint(length * width)")
    res = {}

    def work():
        # passes the cheap size guards, then takes minutes in sympy: the worker is killed at its deadline
        hostile = PA.Block(index=0, result="x^2 + 1", expression="x^2 + 1", code=b.code)
        res["hostile"] = V.judge(hostile, RunResult("ok", "expand((x+1)**999)\n"), passage=GARDEN, sandbox=box)
        res["after"] = V.judge(b, RunResult("ok", "864\n"), passage=GARDEN, sandbox=box)
    t = threading.Thread(target=work)
    t0 = time.perf_counter()
    t.start()
    t.join(60)
    assert not t.is_alive() and time.perf_counter() - t0 < 60
    assert res["hostile"]["outcome"] == "unjudgeable" and res["hostile"]["judge_seconds"] < 7.0
    assert res["after"]["outcome"] == "verified"                   # the worker was replaced, the phase goes on


def test_a_direct_deadline_kill_gives_unjudgeable():
    from mathcode.translate.bounded import BoundedJudge, Unjudgeable
    j = BoundedJudge(deadline_s=0.5, wall_cap_s=1.0)        # the hard wall cap, whatever the CPU share
    try:
        j.call("ping")
        t0 = time.perf_counter()
        with pytest.raises(Unjudgeable, match="longer than"):
            # the symbolic reader is guarded against power towers; an unguarded size still hits the deadline
            j.call("compare_text", expected="x^2", stdout="expand((x+1)**999)\n")       # minutes in sympy
        assert time.perf_counter() - t0 < 3
        assert j.call("compare_text", expected="84", stdout="84\n")[0] is True
        assert j.stats["killed"] == 1
    finally:
        j.close()


def test_a_judge_worker_that_cannot_start_says_why(monkeypatch):
    from mathcode.translate.bounded import BoundedJudge
    j = BoundedJudge(start_timeout_s=20)
    monkeypatch.setattr("sys.executable", "/bin/false")
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            j.call("ping")
    finally:
        j.close()


def test_conditions_copied_from_the_worked_example_are_copied(box):
    # seen from the 0.5B: the example's conditions kept, a garbled expression, a right product of the passage
    passage = "If $25 | a-1$ and $4 | a$, the only solution is $a=76$, with $76^2=5776$."
    text = reply("25 | a and 4 | a", "76^2", "a = 76\nprint(a**2)", conditions="The garden is 12 m long and 7 m wide.")
    assert outcomes(box, passage, text)[0] == ["copied"]
    text = reply("76^2", "5776", "a = 76\nprint(a**2)", conditions="The only solution is a = 76.")
    assert outcomes(box, passage, text)[0] == ["verified"]


def test_number_words_count_as_operands_not_as_stated_results(box):
    passage = "Liam hid 4 dozen eggs, that is $4 \\times 12 = 48$ eggs."
    assert outcomes(box, "Liam hid 4 dozen eggs: 48 eggs.", reply("4 \\times 12", "48", "print(4 * 12)"))[0] == ["verified"]
    assert outcomes(box, passage, reply("4 \\times 12", "48", "dozens = 4\nprint(dozens * 12)"))[0] == ["verified"]
    got, rows = outcomes(box, "Liam hid four dozen eggs.", reply("4 \\times 12", "48", "print(4 * 12)"))
    assert got == ["ungrounded"]                          # 48 is not written in the passage


@pytest.mark.parametrize("text", ["84 " + "a" * 300 + "1", "1" * 900 + "k", "(" + "1" * 900 + "+" + "1" * 90 + "jj",
                                  "x=" + "1." * 400 + "y", "$$" + "1+" * 400, "2{,}" * 250])
def test_plain_readers_are_linear_on_hostile_text(text):
    # values.* runs on the host too (reports, the re-run outputs): no regular expression may backtrack for ever
    from mathcode.translate import values as VA
    t0 = time.perf_counter()
    VA.read_stated(text)
    VA.final_printed(text)
    VA.read_printed(text[:1000])
    assert time.perf_counter() - t0 < 1.0
