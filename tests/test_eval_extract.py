"""Answer extraction and equivalence on real answer shapes (no model needed)."""
import pytest

from mathcode.evaluate.benchmarks import Item, last_boxed, split_options
from mathcode.evaluate.equivalence import is_equivalent
from mathcode.evaluate.extract import extract_answer
from mathcode.evaluate.fewshot import EXEMPLARS, build_prompt, exemplar_items, prompt_id
from mathcode.evaluate.harness import score


@pytest.mark.parametrize("text,kind,want", [
    ("so the result is $\\boxed{\\frac{3}{4}}$.", "math", "\\frac{3}{4}"),
    ("Thus $x = \\boxed{\\dfrac{1}{2}}$", "math", "\\dfrac{1}{2}"),
    ("nested \\boxed{\\frac{\\sqrt{3}}{2}} done", "math", "\\frac{\\sqrt{3}}{2}"),
    ("first \\boxed{1} then \\boxed{2}", "math", "2"),
    ("She earns 1,250 dollars a week. The answer is $1,250.", "number", "1250"),
    ("3 + 4 = 7\n#### 7", "number", "7"),
    ("He has 12 - 5 = 7 apples left", "number", "7"),
    ("The final answer is (4, \\infty).", "math", "(4, \\infty)"),
    ("The answer is -0.25.", "number", "-0.25"),
    ("no digits at all", "number", None),
    ("The answer is 9 * 2 = 18.", "number", "18"),                       # equation chain: the result
    ("Natalia sold 48/2 = 24 clips in May. The answer is 48 + 24 = 72 clips.", "number", "72"),
    ("The answer is $3.50. She keeps the rest.", "number", "3.50"),
    ("Final Answer: The final answer is $7.2\\%$. I hope it is correct.", "math", "7.2\\%"),
    ("Final Answer: The final answer is $[2,5)$. I hope it is correct.", "math", "[2,5)"),
    ("Final Answer: The final answer is $24$. I hope it is correct.", "number", "24"),
    ("The answer is x = 5.", "math", "x = 5"),
    ("Solving gives $x = \\frac{1}{2}$ as the only root", "math", "x = \\frac{1}{2}"),  # math-verify's extraction
])
def test_extract_free_form(text, kind, want):
    assert extract_answer(text, kind)[0] == want


CH = ["1/6", "1/2", "2/3", "1/3"]


@pytest.mark.parametrize("text,want", [
    ("The answer is (B).", "B"),
    ("Answer: C", "C"),
    ("the correct answer is D because ...", "D"),
    ("B) 1/2 is the probability", "B"),
    ("I pick option A.", "A"),
    ("So it is \\boxed{C}", "C"),
    ("The answer is 1/3", "D"),             # option text instead of a letter
    ("The answer is \\frac{2}{3}", "C"),     # option text, equivalent form
    ("I do not know.", None),
    ("The answer is a point.", None),        # an article is not option A
    ("The answer is an integer, so the answer is (b).", "B"),
    ("(C)", "C"),
])
def test_extract_choice_phrasings(text, want):
    assert extract_answer(text, "choice", CH)[0] == want


def test_option_text_matched_by_text_before_formula_equivalence():
    ch = ["1 over 6", "3 over 2", "2 over 3", "6"]
    assert extract_answer("The answer is 3 over 2.", "choice", ch)[0] == "B"
    assert extract_answer("The answer is 5 over 2.", "choice", ch)[0] is None       # no formula guess on prose
    assert extract_answer("The answer is 6.", "choice", ch)[0] == "D"
    pts = ["a point", "a line", "a plane", "empty"]
    assert extract_answer("The answer is a line.", "choice", pts)[0] == "B"


@pytest.mark.parametrize("pred,gold,kind,ok", [
    ("\\dfrac{1}{2}", "\\frac{1}{2}", "math", True),
    ("0.5", "\\frac12", "math", True),
    ("1/2", "\\frac{1}{2}", "math", True),
    ("1,000", "1000", "number", True),
    ("1\\,000", "1000", "math", True),
    ("18.0", "18", "number", True),
    ("18", "17", "number", False),
    ("(1, 2]", "(1,2]", "math", True),
    ("(1,2)", "(1,2]", "math", False),
    ("[-2, 5)", "[-2,5)", "math", True),
    ("x(x+2)", "x^2+2x", "math", True),
    ("2\\sqrt{2}", "\\sqrt{8}", "math", True),
    ("3 \\times 10^{6}", "3e6", "math", True),          # OCW golds in Python notation
    ("-\\frac{1}{3}", "-1./3", "math", True),
    ("\\arcsin(10/13)", "np.arcsin(10/13)", "math", True),
    ("1.6 \\mathrm{~cm}", "1.6", "math", True),           # units
    ("80 m", "80", "math", True),
    ("45^\\circ", "45", "math", True),
    ("B", "B", "choice", True),
    ("(b)", "B", "choice", True),
    ("C", "B", "choice", False),
    (None, "3", "number", False),
    ("7.2\\%", "7.2\\%", "math", True),
    ("7.2%", "7.2\\%", "math", True),
    ("x = 5", "5", "math", True),
    ("x = \\frac{1}{2}", "0.5", "math", True),
    ("\\frac{7}{5} + \\frac{1}{5} i", "\\frac{7}{5} + \\frac{1}{5} i.", "math", True),   # MATH gold ending in "."
    ("Evelyn", "\\text{Evelyn}", "math", True),
    ("\\frac{3}{2}", "\\frac{1}{6}", "math", False),
])
def test_equivalence(pred, gold, kind, ok):
    assert is_equivalent(pred, gold, kind) is ok


def test_ocw_relative_tolerance_is_opt_in():
    assert not is_equivalent("1.62", "1.6", "math")
    assert is_equivalent("1.61", "1.6", "math", rel_tol=0.01)
    assert is_equivalent("4.49\\times10^{33}", "4.5e33", "math", rel_tol=0.01)
    assert not is_equivalent("5\\times10^{33}", "4.5e33", "math", rel_tol=0.01)


def test_last_boxed_and_options():
    assert last_boxed("a \\boxed{x^{2}} b \\fbox{7}") == "7"
    assert last_boxed("no box") is None
    assert split_options("A) $f(-6)=0$ B) 2 C) -10 and 10 D) x") == ["$f(-6)=0$", "2", "-10 and 10", "x"]
    assert split_options("A. one B. two C. three D. four") == ["one", "two", "three", "four"]


@pytest.mark.parametrize("fam", list(EXEMPLARS))
def test_every_exemplar_scores_correct_on_its_own_solution(fam):
    shots = exemplar_items(fam)
    assert len(shots) == 4
    for item, solution in shots:
        assert score(item, " " + solution)["correct"], (fam, item.question)


def test_prompt_is_four_shot_and_stable():
    it = Item("gsm8k", "x", "What is 2 + 2?", "4", "number")
    p = build_prompt(it)
    assert p.count("Question:") == 5 and p.endswith("Question: What is 2 + 2?\nAnswer:")
    assert prompt_id(p) == prompt_id(build_prompt(it)) and len(prompt_id(p)) == 12
    with pytest.raises(ValueError, match="only 4 exemplars"):
        build_prompt(it, 5)


def test_pal_program_runs_in_phase2_sandbox():
    from mathcode.evaluate.pal import answer_from_output, extract_program
    from mathcode.sandbox import Sandbox
    completion = "Here is a program:\n```python\nprice = 3\nprint(price * 14 + price * 28)\n```\nDone."
    prog = extract_program(completion)
    assert prog == "price = 3\nprint(price * 14 + price * 28)"
    assert extract_program("The answer is 7.") is None
    with Sandbox(workers=1) as sb:
        res = sb.run(prog)
    item = Item("gsm8k", "x", "q", "126", "number")
    pred, how = answer_from_output(res.stdout, item)
    assert res.status == "ok" and pred == "126" and how == "printed" and is_equivalent(pred, "126", "number")
    choice = Item("sat_math", "y", "q", "B", "choice", choices=["1", "2", "3", "4"])
    assert answer_from_output("B\n", choice)[0] == "B"
