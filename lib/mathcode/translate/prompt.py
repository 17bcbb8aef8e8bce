"""The translation prompt: the paper's four fields, in our own words, editable from the notebook.

For each computation in a passage the model writes *Conditions Needed*, *Computation Expression*
(LaTeX), *Computation Result* and a *Python Code Snippet* that prints the result. The optional worked
example is given as a previous user/assistant turn, so that the model's own chat template frames it;
small models copy a demonstrated format far more reliably than a described one.
"""
from __future__ import annotations


from mathcode import paths

FIELDS = ["Conditions Needed", "Computation Expression", "Computation Result", "Python Code Snippet"]

INSTRUCTION = """You turn the calculations in a piece of math text into small Python programs.

Read the text below. For each calculation the text itself carries out and states the result of (at most
{max_blocks}, in the order of the text), write these four parts:

**Conditions Needed:** one short sentence with the facts from the text that the calculation relies on.
**Computation Expression:** the calculation itself, written in LaTeX between $ signs.
**Computation Result:** the value the text states for it, as written in the text.
**Python Code Snippet:** a self-contained Python program in a ```python fence that puts the numbers from the
conditions into variables, computes exactly the Computation Expression from them and prints only its result
with print(). Do not type the answer in; compute it. Do not read input.

Text:
{passage}"""

EXAMPLE_PASSAGE = ("A rectangular garden is 12 m long and 7 m wide. Its area is $12 \\times 7 = 84$ square "
                   "metres. A path 1 m wide runs around it, so the outer rectangle measures 14 m by 9 m and "
                   "the path covers $14 \\cdot 9 - 84 = 42$ square metres.")

EXAMPLE_REPLY = """**Conditions Needed:**
The garden is 12 m long and 7 m wide.

**Computation Expression:**
$12 \\times 7$

**Computation Result:**
84

**Python Code Snippet:**
```python
length = 12
width = 7
print(length * width)
```

**Conditions Needed:**
The outer rectangle is 14 m by 9 m and the garden covers 84 square metres.

**Computation Expression:**
$14 \\cdot 9 - 84$

**Computation Result:**
42

**Python Code Snippet:**
```python
outer = 14 * 9
garden = 84
print(outer - garden)
```"""


EXAMPLE_BLOCKS = ["**Conditions Needed:**" + b for b in EXAMPLE_REPLY.split("**Conditions Needed:**")[1:]]


def example_reply(max_blocks: int) -> str:
    """The worked example's reply cut to ``max_blocks`` blocks (it asks for "at most {max_blocks}", and a
    shorter prompt is faster to read on a CPU)."""
    return "".join(EXAMPLE_BLOCKS[:max(1, max_blocks)]).strip()


def load_instruction(prompt_file: str = "") -> str:
    """The built-in instruction, or the text of ``prompt_file`` (must contain ``{passage}``)."""
    if not prompt_file:
        return INSTRUCTION
    f = paths.resolve_path(prompt_file)
    if not f.exists():
        raise FileNotFoundError(f"prompt_file {f} does not exist; give a text file containing {{passage}} "
                                f"or leave prompt_file empty for the built-in prompt")
    text = f.read_text(encoding="utf-8")
    if "{passage}" not in text:
        raise ValueError(f"prompt_file {f} has no {{passage}} placeholder; add it where the passage goes")
    return text


FOCUS = ("\n\nTranslate the calculation(s) written in this part of the text, in its order; do not solve the "
         "question (what comes before this part is context):\n{focus}")


SYMBOLIC = ("\n\nThis text's result is an expression (a derivative, an integral, a limit, a simplified form, the "
            "solutions of an equation or a matrix): write the snippet with sympy — define the symbols with "
            "sympy.symbols, build the expression from the text, compute the result with the sympy function that does "
            "it (diff, integrate, limit, simplify, solve, Matrix products and inverses) and print what it returns. "
            "Do not type the result in.")


def needs_sympy(text: str) -> bool:
    """The text carries a computation whose stated result is an expression (``passages.is_symbolic_computation``)."""
    from mathcode.translate import passages as PS
    for kind, a, b in PS.find_math(text or ""):
        if kind.startswith("latex") and PS.is_symbolic_computation(PS._math_body(text[a:b]), text[max(0, a - 80):a]):
            return True
    return False


def focus_of(passage: dict) -> str:
    """The part of a passage that holds its computations (the passage minus its preceding context)."""
    text, ctx = passage.get("text", ""), passage.get("context", "")
    return text[len(ctx):].strip() if ctx and text.startswith(ctx) else ""


def build_messages(passage_text: str, instruction: str = INSTRUCTION, *, worked_example: bool = True,
                   max_blocks: int = 4, system: str = "", focus: str = "") -> list[dict]:
    """Chat messages for one passage (the backend applies the model's own chat template).

    ``focus``: the part holding the computations, repeated after the text when the passage also carries
    context — a small model otherwise translates the first equation of the context (measured on the demo).
    A passage whose computation states an expression (``needs_sympy``) also gets ``SYMBOLIC``: the worked example
    shows numbers only, and a program printing a float cannot state ``3x^2 + 2``."""
    def fill(p):
        return instruction.replace("{passage}", p).replace("{max_blocks}", str(max_blocks))
    msgs = [{"role": "system", "content": system}] if system else []
    if worked_example:
        msgs += [{"role": "user", "content": fill(EXAMPLE_PASSAGE)},
                 {"role": "assistant", "content": example_reply(max_blocks)}]
    tail = FOCUS.replace("{focus}", focus.strip()) if focus.strip() and focus.strip() != passage_text.strip() else ""
    if needs_sympy(focus.strip() or passage_text):     # symbolic results: sympy, asked only where they are
        tail += SYMBOLIC
    msgs.append({"role": "user", "content": fill(passage_text) + tail})
    return msgs
