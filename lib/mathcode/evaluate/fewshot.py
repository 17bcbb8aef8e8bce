"""Few-shot exemplars and prompt templates (4-shot by default, as the paper).

Why written here: ``../shared`` holds only test splits, and scoring an item that is also an exemplar would
inflate accuracy. These 16 exemplars were written for this kit (not taken from any benchmark); each
family (GSM8K-style word problems, MATH-style LaTeX, OCW-style science with units, multiple choice) has
four, every solution checked by hand and by ``tests/test_eval_extract.py`` (each exemplar's own
answer must extract and score correct). The template matches lm-evaluation-harness's gsm8k task
("Question: ...\\nAnswer: <target>", exemplars joined by a blank line) so the cross-check in
``bench/bench_eval_lmeval.py`` compares identical prompts.
"""
from __future__ import annotations

import hashlib

from mathcode.evaluate.benchmarks import FAMILY, LETTERS, Item

QUESTION_TEMPLATE = "Question: {question}\nAnswer:"
CHOICE_TEMPLATE = "Question: {question}\nChoices: {choices}\nAnswer:"
TARGET_DELIMITER = " "
SHOT_DELIMITER = "\n\n"
STOP = ["Question:", "</s>", "<|im_end|>"]
PAL_INSTRUCTION = ("Write a Python program that computes the answer and prints only the final answer.")

EXEMPLARS = {
    "gsm8k": [
        ("A bakery sells muffins for $3 each. On Monday it sold 14 muffins and on Tuesday it sold twice as many. "
         "How much money did the bakery make from muffins on those two days?",
         "On Tuesday it sold 14 * 2 = 28 muffins. Over both days it sold 14 + 28 = 42 muffins. "
         "At $3 each that is 42 * 3 = 126 dollars. The answer is 126.", "126"),
        ("A water tank holds 480 liters and already contains 120 liters. A pipe adds 12 liters per minute. "
         "How many minutes does it take to fill the tank?",
         "The tank still needs 480 - 120 = 360 liters. At 12 liters per minute that takes 360 / 12 = 30 minutes. "
         "The answer is 30.", "30"),
        ("Omar bought 3 notebooks at $2.50 each and a pen for $1.75. He paid with a $20 bill. "
         "How much change did he get?",
         "The notebooks cost 3 * 2.50 = 7.50 dollars. With the pen he spent 7.50 + 1.75 = 9.25 dollars. "
         "His change is 20 - 9.25 = 10.75 dollars. The answer is 10.75.", "10.75"),
        ("A class has 32 students. One quarter of them walk to school, 10 come by bus, and the rest are driven "
         "by their parents. How many students are driven?",
         "One quarter of 32 is 32 / 4 = 8 students who walk. Walking or by bus: 8 + 10 = 18 students. "
         "So 32 - 18 = 14 students are driven. The answer is 14.", "14"),
    ],
    "math": [
        ("What is the sum of the roots of $x^2 - 7x + 10 = 0$?",
         "The quadratic factors as $(x-2)(x-5) = 0$, so the roots are $2$ and $5$ and their sum is "
         "$2 + 5 = \\boxed{7}$.", "7"),
        ("Simplify $\\frac{3}{4} + \\frac{5}{6}$.",
         "With the common denominator $12$: $\\frac{9}{12} + \\frac{10}{12} = \\boxed{\\frac{19}{12}}$.",
         "\\frac{19}{12}"),
        ("For which $x$ is $2x - 3 > 5$? Express your answer in interval notation.",
         "Adding $3$ gives $2x > 8$, so $x > 4$. In interval notation: $\\boxed{(4, \\infty)}$.",
         "(4, \\infty)"),
        ("How many positive divisors does $36$ have?",
         "Since $36 = 2^2 \\cdot 3^2$, it has $(2+1)(2+1) = \\boxed{9}$ positive divisors.", "9"),
    ],
    "ocw": [
        ("A car accelerates uniformly from rest to $20 \\mathrm{~m/s}$ in $8 \\mathrm{~s}$. How far does it travel "
         "in that time, in meters?",
         "With uniform acceleration from rest, $d = \\frac{1}{2} v t = \\frac{1}{2}(20)(8) = \\boxed{80}$ m.", "80"),
        ("A photon has wavelength $500 \\mathrm{~nm}$. What is its energy in electron-volts? "
         "Use $hc = 1240 \\mathrm{~eV\\,nm}$.",
         "$E = \\frac{hc}{\\lambda} = \\frac{1240}{500} = \\boxed{2.48}$ eV.", "2.48"),
        ("A resistor of $50~\\Omega$ carries a current of $0.2 \\mathrm{~A}$. What power does it dissipate, "
         "in watts?",
         "$P = I^2 R = (0.2)^2 \\cdot 50 = 0.04 \\cdot 50 = \\boxed{2}$ W.", "2"),
        ("An isotope has a half-life of $3$ days. What fraction of a sample remains after $12$ days?",
         "$12$ days are $12/3 = 4$ half-lives, so the fraction left is $(1/2)^4 = \\boxed{\\frac{1}{16}}$.",
         "\\frac{1}{16}"),
    ],
    "choice": [
        ("If $5x + 2 = 17$, what is $x$?", ["2", "3", "5", "15"],
         "Subtracting 2 gives $5x = 15$, so $x = 3$. The answer is (B).", "B"),
        ("A fair six-sided die is rolled once. What is the probability of rolling a number greater than 4?",
         ["1/6", "1/2", "2/3", "1/3"],
         "Only 5 and 6 are greater than 4, so the probability is 2/6 = 1/3. The answer is (D).", "D"),
        ("What is the slope of the line through $(1, 2)$ and $(3, 8)$?", ["3", "2", "6", "1/3"],
         "The slope is $(8 - 2)/(3 - 1) = 6/2 = 3$. The answer is (A).", "A"),
        ("The mean of four numbers is 6. Three of them are 4, 5 and 9. What is the fourth?", ["4", "8", "6", "10"],
         "The four numbers sum to 4 * 6 = 24. The three known ones sum to 18, so the fourth is 24 - 18 = 6. "
         "The answer is (C).", "C"),
    ],
}


def format_choices(choices: list[str]) -> str:
    return " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def format_question(item: Item) -> str:
    if item.kind == "choice" and item.choices:
        return CHOICE_TEMPLATE.format(question=item.question.strip(), choices=format_choices(item.choices))
    return QUESTION_TEMPLATE.format(question=item.question.strip())


def family(item: Item) -> str:
    """Which exemplar set an item gets, decided per benchmark: the benchmark's declared family (custom
    benchmarks set it once for the whole file), else the known benchmark's, else by the benchmark's kind."""
    if item.meta.get("family"):
        return item.meta["family"]
    if item.benchmark in FAMILY:
        return FAMILY[item.benchmark]
    if item.meta.get("proxy"):
        return "gsm8k"
    return {"choice": "choice", "number": "gsm8k"}.get(item.kind, "math")


def exemplar_items(fam: str) -> list[tuple[Item, str]]:
    """(Item, worked solution) for a family; used to build prompts and to test extraction."""
    out = []
    for i, ex in enumerate(EXEMPLARS[fam]):
        if fam == "choice":
            q, ch, sol, ans = ex
            out.append((Item(f"fewshot-{fam}", f"shot{i}", q, ans, "choice", choices=ch), sol))
        else:
            q, sol, ans = ex
            kind = "number" if fam == "gsm8k" else "math"
            out.append((Item(f"fewshot-{fam}", f"shot{i}", q, ans, kind), sol))
    return out


def build_prompt(item: Item, n_shots: int = 4) -> str:
    """The exact text the model continues: ``n_shots`` exemplars of the item's family, then the item."""
    shots = exemplar_items(family(item))
    if n_shots > len(shots):
        raise ValueError(f"n_shots={n_shots}: only {len(shots)} exemplars are written per family; use 0..{len(shots)}")
    parts = [format_question(ex) + TARGET_DELIMITER + sol for ex, sol in shots[:n_shots]]
    return SHOT_DELIMITER.join(parts + [format_question(item)])


def build_pal_prompt(item: Item) -> list[dict]:
    """Chat messages for tool-integrated (PAL) mode: the model answers with a Python program."""
    q = item.question.strip()
    if item.kind == "choice" and item.choices:
        q += "\nChoices: " + format_choices(item.choices) + "\nPrint the letter of the correct choice."
    return [{"role": "user", "content": f"{PAL_INSTRUCTION}\n\n{q}"}]


def prompt_id(prompt: str) -> str:
    """Short stable hash of the exact prompt text (same id = same prompt across models)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
