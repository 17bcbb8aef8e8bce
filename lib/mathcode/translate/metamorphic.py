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
5. **The computation's own operands** (``grounding.result_operands``): where the passage computes the stated
   result itself (``$12 + 7 = 19$``), the inputs must include one of that computation's operands; inputs that are
   only other numbers of the passage (a date, ``2019 % 100``) coincide with the result -> *ungrounded*. A literal
   equal to the answer that is also an operand of that computation (``-32(0) + 48 = 48``) is not probed as typed
   in when the code uses another non-trivial operand of it or a sympy operation; otherwise it is.
6. **Symbolic results** (an expression with free symbols, a matrix): a subtree of the code that only writes a
   value and equals the result (``typed_expression``: ``3*x**2 + 2``, ``Matrix([[2, 1], [4, 3]])``,
   ``sympify("x + 1")``) is the result typed in -> *hardcoded*; a code without any number of the passage that
   computes the result by a sympy operation (``diff(sin(x), x)``) counts as computed.

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
    # an index (A[0][1], row[2]) is the program's structure, not a number of the passage: never perturbed
    in_fstring |= {id(n) for j in ast.walk(tree) if isinstance(j, ast.Subscript) for n in ast.walk(j.slice)
                   if isinstance(n, ast.Constant) and isinstance(n.value, int)}
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
    # the operands of the passage's own computation of this result (None: the passage states it in no operation)
    operands = G.result_operands(passage, answers) if passage is not None and answers else None
    typed_expr = typed_expression(tree, sv)
    if typed_expr:
        return {"inputs": [], "variants": [], "fresh": "", "fresh_value": "", "ungrounded_operands": [],
                "why": f"the code writes the result itself ({typed_expr[:80]}) instead of computing it: typed in"}
    inputs, typed, made_up, shared = [], [], [], []
    for node, value in _literals(tree):
        x = VA.Num(Fraction(value)) if isinstance(value, int) else VA.number(repr(value))
        if x is None:
            continue
        if any(a.value == x.value or (a.value == -x.value) for a in answers):
            if operands is not None and G.among(x, operands):
                shared.append((node, value))      # -32*0 + 48 = 48: the answer is also an operand of the passage's
            elif abs(x.value) >= 2:
                typed.append((node, value))
            continue
        if G.input_literal(value, nums):
            inputs.append((node, value))
        elif abs(x.value) not in (0, 1):
            made_up.append(repr(value))
    variants = [_replace(code, {n: _perturbed(n, v, k, i) for i, (n, v) in enumerate(inputs)})
                for k in range(1, N_VARIANTS + 1)] if inputs else []
    if shared and not _symbolic_operation(tree) and not any(
            abs(v) not in (0, 1) and G.among(VA.Num(Fraction(v)) if isinstance(v, int) else VA.number(repr(v)),
                                             operands) for _, v in inputs):
        # the answer written as an operand counts only next to another operand of the passage's computation
        # (-32*0 + 48 uses -32) or inside a sympy operation (the 3 of limit(sin(3x)/x, x, 0)); "48 + 0 * t" is
        # neither: the answer is typed in
        typed += [(n, v) for n, v in shared if abs(v) >= 2]
        shared = []
    fresh, fresh_value = "", ""
    if typed:
        fresh = _replace(code, {n: _fresh(n, v) for n, v in typed})
        fresh_value = str(_fresh(typed[0][0], typed[0][1]))
    unrelated = ""
    if operands and inputs and not any(G.among(VA.Num(Fraction(v)) if isinstance(v, int) else VA.number(repr(v)),
                                               operands) for _, v in inputs):
        # the code computes from numbers of the passage, but none of those the passage computes this result from
        # (a date, a page number): a value that only coincides with the result, not a translation of it
        unrelated = (f"the code's inputs ({', '.join(repr(v) for _, v in inputs[:6])}) are none of the numbers the "
                     f"passage computes {stated[:40]!r} from")
    return {"inputs": [repr(v) for _, v in inputs], "variants": variants, "fresh": fresh,
            "fresh_value": fresh_value, "why": "", "unrelated_inputs": unrelated,
            "shared_operands": [repr(v) for _, v in shared],
            # a symbolic result computed by a sympy operation (diff, integrate, ...) from no number at all
            "symbolic_operation": _symbolic_operation(tree) if typed_expr == "" and _is_symbolic(sv) else "",
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
        if pl.get("symbolic_operation"):
            return True, ""                      # d/dx sin x: sympy computes it, and the result is not in the code
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


# --- a symbolic result typed into the code ---------------------------------------------------------------
# calls that only *write* a value (constructors, elementary functions): a subtree made of these and of numbers and
# names that equals the result is the result typed in. Operations (diff, integrate, limit, simplify, solve, ...)
# are not among them: a subtree holding one computes.
_WRITERS = frozenset("""Matrix ImmutableMatrix array Array sympify S parse_expr Rational Integer Float Symbol symbols
sqrt exp log ln sin cos tan sec csc cot asin acos atan sinh cosh tanh Abs abs pi E I oo Interval Union And Or Eq Lt Gt
Le Ge FiniteSet""".split())
_MODULE = re.compile(r"\b(?:sp|sympy|np|numpy|math|smp|sy)\.")


def _writes_only(node) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name not in _WRITERS:
                return False
        elif isinstance(n, ast.Attribute) and n.attr not in _WRITERS and not (
                isinstance(n.value, ast.Name) and n.value.id in ("sp", "sympy", "np", "numpy", "math", "smp", "sy")):
            return False
        elif isinstance(n, (ast.Lambda, ast.Subscript, ast.Starred, ast.NamedExpr, ast.comprehension)):
            return False
    return True


_OPERATIONS = frozenset("""diff integrate limit simplify solve solveset factor expand cancel apart together trigsimp
expand_trig nsimplify linsolve nonlinsolve dsolve series summation product det inv transpose T inverse eigenvals
eigenvects rref nullspace Derivative Integral Limit doit subs evalf radsimp powsimp logcombine expand_log ratsimp
collect idiff matmul dot cross solve_univariate_inequality reduce_inequalities""".split())


def _is_symbolic(v) -> bool:
    return isinstance(v, VA.Mat) or (isinstance(v, VA.Expr) and bool(re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", v.text))))


def _symbolic_operation(tree) -> str:
    """The name of a sympy operation the code calls (``diff``, ``integrate``, ``A.inv()``, ``A.T``), or ''."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in _OPERATIONS:
                return name
        if isinstance(n, ast.Attribute) and n.attr == "T":                  # a transpose
            return n.attr
    return ""


def typed_expression(tree, stated) -> str:
    """The source of a subtree of the code that writes the symbolic ``stated`` result itself (``3*x**2 + 2``,
    ``Matrix([[1, 2], [3, 4]])``, ``sympify("x + 1")``), or ''. Only for results that are expressions with free
    symbols or matrices: a number is legitimately written as the operation that gives it (``12 * 7``)."""
    from mathcode.translate import symbolic as SY
    target = SY.target_sympy(stated)
    if target is None:
        return ""
    import sympy
    local = {"array": sympy.Matrix, "Array": sympy.Matrix, "ln": sympy.log, "abs": sympy.Abs}
    seen = 0
    kinds = (ast.BinOp, ast.UnaryOp, ast.Call, ast.List, ast.Constant)
    if isinstance(target, sympy.MatrixBase):      # a product of written matrices is a computation: literals only
        kinds = (ast.Call, ast.List, ast.Constant)
    for node in ast.walk(tree):
        if not isinstance(node, kinds) or seen > 200:
            continue
        if isinstance(target, sympy.MatrixBase) and isinstance(node, ast.Call) and any(
                isinstance(a, (ast.BinOp, ast.Call)) for a in node.args):
            continue
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            continue
        if not _writes_only(node):
            continue
        seen += 1
        try:
            src = node.value if isinstance(node, ast.Constant) else _MODULE.sub("", ast.unparse(node))
        except Exception:                                          # noqa: BLE001
            continue
        if len(src) > 400 or not re.search(r"[A-Za-z\[]", src):
            continue
        e = SY.python_sympy(src, local)
        if isinstance(e, list):
            try:
                e = sympy.Matrix(e)
            except Exception:                                      # noqa: BLE001
                continue
        if e is not None and SY.structurally_equal(e, target):
            return src
    return ""
