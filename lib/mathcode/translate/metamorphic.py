"""Is the printed value computed from the passage's inputs? Decided by running the snippet again.

A list of typed-in patterns (``print(84)``, ``eval("84")``, ``sum([84])``, ``max(84, 0)``, a dict ``.get``, a
lambda, a class attribute, a helper that prints its argument, ``exec``...) is never complete. One rule replaces
it — a metamorphic re-run in the sandbox:

1. **Inputs** are the code's numeric literals (and strings that are plain numbers) that are numbers of the
   passage (``grounding.input_literal``), except literals equal to the stated result (typing the answer in never
   counts as using an input). None -> *hardcoded* ("uses no number of the passage", or "the only number from the
   passage is the stated result itself" when that is what the code holds), or *ungrounded* when the
   code does compute from numbers, none of which is the passage's (``160 / 64`` for a passage's 150 km at 60 km/h).
2. **Perturb** every input at once, three times (a small, a doubling and a tripling change, with a different
   offset per literal so that ``a - b`` and ``a / b`` move too) and run each variant in the sandbox. The final
   printed value must change in at least one variant that ran cleanly; else *hardcoded* ("does not move when
   the passage's numbers in the code change").
3. **Pass-through**: literals equal to the stated result (|value| >= 2; 0 and 1 are everyday constants) are
   replaced by a fresh value with the inputs unchanged; a snippet that then prints the fresh value passes the
   typed answer to its output (``84 * 1``, ``84 + 0 * a``) -> *hardcoded*.
4. **Control**: the unchanged snippet runs once more; an output that differs between identical runs cannot be
   attributed to its inputs -> *unjudgeable*.

Treatment of constants (stated and tested): a constant the code *uses* (7 days a week, 100 for a percent, 60
minutes) is fine — it need not be in the passage; the output must still move with the passage's numbers. A
correct computation whose printed value cannot move with any of its inputs (the angle sum of a triangle computed
as a + b + (180 - a - b)) is rejected as *hardcoded*: running cannot tell it from a typed-in value, and losing
these rare blocks is cheaper than keeping typed-in ones. An identity whose form holds a number of the passage
(sin²x + cos²x with the exponent 2 written in the passage) does move and is kept. A comparison or rounding that a
small change does not flip (``floor(7.3)``, ``150 > 100``) usually moves under the larger variants.

Literals are replaced in the source text at their exact positions (comments and formatting kept). Cost: up to 5
sandbox runs per block whose output matched, in parallel (3.6 on average on the labelled set, bench/README.md).
"""
from __future__ import annotations

import ast
import re
from fractions import Fraction

from mathcode.translate import grounding as G, values as VA

N_VARIANTS = 3


_NUMERIC_STR = re.compile(r"\d{1,30}(?:\.\d{1,30})?")


def _literals(tree) -> list[tuple[ast.Constant, object]]:
    """(node, numeric value) of every int/float literal and every string literal that is a plain number
    (``int("1011", 2)``, ``Decimal("2.5")``); not the text parts of f-strings."""
    in_fstring = {id(n) for j in ast.walk(tree) if isinstance(j, ast.JoinedStr) for n in ast.walk(j)}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in in_fstring or not hasattr(node, "end_col_offset"):
            continue
        if type(node.value) in (int, float):
            out.append((node, node.value))
        elif isinstance(node.value, str) and _NUMERIC_STR.fullmatch(node.value):
            out.append((node, int(node.value) if node.value.isdigit() else float(node.value)))
    return sorted(out, key=lambda t: (t[0].lineno, t[0].col_offset))


def _perturbed(node: ast.Constant, v, k: int, i: int):
    """Variant ``k`` (1..3) of literal number ``i`` with value ``v``: never v, different offsets per literal.
    A number written as a string stays a string (digits appended, so ``int("1011", 2)`` stays binary)."""
    if isinstance(node.value, str):
        return node.value + "1" * k if node.value.isdigit() else repr(_perturbed_num(v, k, i))
    return _perturbed_num(v, k, i)


def _perturbed_num(v, k: int, i: int):
    if isinstance(v, int):
        return [None, v + 1 + i, 2 * v + 3 + i, 3 * v + 11 + 2 * i][k]
    return float(repr([None, v * 1.1 + 0.01 * (i + 1), v * 1.9 + 0.3 + 0.1 * i, v * 3.1 + 1.3 + 0.2 * i][k]))


def _fresh(node: ast.Constant, v):
    f = 2 * v + 7 if isinstance(v, int) else float(repr(v * 1.5 + 0.25))
    return str(f) if isinstance(node.value, str) else f


def _replace(code: str, repl: dict) -> str:
    """``code`` with literal nodes replaced (``repl``: node -> new value) at their byte positions."""
    lines = code.encode("utf-8").split(b"\n")
    for node in sorted(repl, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        if node.lineno != node.end_lineno:
            continue
        ln = lines[node.lineno - 1]
        new = repr(repl[node]).encode()
        lines[node.lineno - 1] = ln[:node.col_offset] + b"(" + new + b")" + ln[node.end_col_offset:]
    return b"\n".join(lines).decode("utf-8", "replace")


def plan(code: str, passage: str | None, stated: str) -> dict:
    """The re-runs to make: perturbed variants of the inputs, the pass-through probe, and which literals are
    inputs. Reads untrusted code (ast) and text: runs in the bounded worker."""
    code = code.replace("\r\n", "\n").replace("\r", "\n")     # ast's line numbers, our line split
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return {"inputs": [], "variants": [], "fresh": "", "fresh_value": "", "why": f"code does not parse ({e})"}
    sv = VA.read_stated(stated)
    answers = [x for x in (sv.items if isinstance(sv, VA.Many) else (sv,)) if isinstance(x, VA.Num)]
    answers += [VA.Num(a.value / 100) for a in answers if a.percent]          # 65% typed in as 0.65
    nums = G.passage_values(passage, words=True) if passage is not None else None
    inputs, typed, made_up = [], [], []
    for node, value in _literals(tree):
        x = VA.Num(Fraction(value)) if isinstance(value, int) else VA.number(repr(value))
        if x is None:
            continue
        if any(a.value == x.value or (a.value == -x.value) for a in answers):
            if abs(x.value) >= 2:
                typed.append((node, value))
            continue
        if G.input_literal(value, nums):
            inputs.append((node, value))
        elif abs(x.value) not in (0, 1):
            made_up.append(repr(value))
    variants = [_replace(code, {n: _perturbed(n, v, k, i) for i, (n, v) in enumerate(inputs)})
                for k in range(1, N_VARIANTS + 1)] if inputs else []
    fresh, fresh_value = "", ""
    if typed:
        fresh = _replace(code, {n: _fresh(n, v) for n, v in typed})
        fresh_value = str(_fresh(typed[0][0], typed[0][1]))
    return {"inputs": [repr(v) for _, v in inputs], "variants": variants, "fresh": fresh,
            "fresh_value": fresh_value, "why": "",
            # the stated result written in the code as a literal (not an input: typing the answer in uses nothing)
            "typed": [repr(v) for _, v in typed][:8],
            # operands none of which is the passage's (and no typed-in answer): a misreading, not a typed answer
            "ungrounded_operands": made_up[:8] if not inputs and not typed else []}


def _final(stdout: str) -> str | None:
    p = VA.final_printed(stdout)
    return None if p.why else p.text


def decide(pl: dict, stdout: str, control, variant_runs: list, fresh_run) -> tuple[bool | None, str]:
    """(computed, why) from the re-runs: True, False (typed in), or None (cannot tell: not deterministic)."""
    if pl.get("why"):
        return False, pl["why"]
    if not pl["inputs"]:
        typed = pl.get("typed") or []
        if typed:                 # the passage's number is in plain view in the code: say which, and why it is no input
            return False, (f"the code's only number from the passage is the stated result itself ({typed[0]}), "
                           f"written in as a literal: nothing is computed from the passage's other numbers")
        return False, "the code uses no number of the passage (its printed value is typed in or made up)"
    base = _final(stdout)
    if control is not None and (control.status != "ok" or _final(control.stdout) != base):
        return None, "the output differs between two identical runs"
    if fresh_run is not None and fresh_run.status == "ok":
        out = VA.final_printed(fresh_run.stdout)
        fv = VA.number(pl["fresh_value"])
        if out.value is not None and fv is not None and VA.same(VA.Num(fv.value), out.value):
            return False, "the typed-in answer passes straight to the output (replacing it changes what is printed to it)"
    ran = [r for r in variant_runs if r is not None and r.status == "ok"]
    if any(_final(r.stdout) != base for r in ran):
        return True, ""
    if not ran:
        return False, "no perturbed run of the code succeeded (cannot show that its output depends on its inputs)"
    return False, (f"the printed value does not change when the passage's numbers in the code "
                   f"({', '.join(pl['inputs'][:6])}) change: it is typed in")
