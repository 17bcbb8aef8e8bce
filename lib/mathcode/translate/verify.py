"""Decide whether a translated block is trustworthy, and if not, why not.

A block is *verified* only when all of these hold (``judge``):
  * it parsed and did not copy the worked example;
  * its snippet ran cleanly in the sandbox (any other sandbox status — ``error``, ``timeout``, ``memory``,
    ``output_limit``, ... — is the rejection reason) and printed something;
  * the printed output matches the stated result: the paper's rule (both numeric, |difference| <= 0.01) or
    symbolic equivalence judged by math-verify (sympy underneath), because texts state
    ``\\frac{\\sqrt{3}}{2}`` where code prints ``0.866025403784439`` or ``sqrt(3)/2``  (else ``wrong_result``);
  * the stated result appears in the passage (``grounding.grounded``, else ``ungrounded``) — matching the
    model's own statement alone lets a misreading of the passage through;
  * the printed value is computed, not typed in (``dataflow.typed_in``, else ``hardcoded``) — ``print(84)``
    matches any stated 84;
  * the stated LaTeX expression, where it evaluates, equals the stated result (``grounding.consistent``,
    else ``inconsistent``).
One repair, never a relaxation: a small translator often computes the right thing but copies the wrong number
into *Computation Result* (the last link of a chain, ``19 mod 8 = 3`` stated as 3 for ``1^2+2*3^2``; the next
line's total). When the printed value is what the block's own expression evaluates to *and* the passage states
that value as a result (right after ``=``), the result is re-read from the passage (``grounding.reread_result``):
the block is kept with the passage's value as its result, the model's is kept as ``stated_result``, and every
other check still applies. The funnel counts these blocks separately.
Every check's verdict is kept in ``checks`` so that the report can say how many blocks each rule removed.
"""
from __future__ import annotations

import ast
import math
import re
import threading
from fractions import Fraction

# the order is the order of the checks in ``judge``: the first failing one names the outcome
OUTCOMES = ["verified", "unparsable", "copied", "error", "timeout", "memory", "output_limit", "killed_leftovers",
            "no_output", "wrong_result", "ungrounded", "hardcoded", "inconsistent"]
NEW_RULES = ["ungrounded", "hardcoded", "inconsistent"]   # rules added after "output matches stated result"

_NUM = re.compile(r"^[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_LATEX_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")
_TRAILING_NUM = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?(?=\W*$)")
_UNITS = re.compile(r"^([-+]?[£$€]?\s*[-+]?[\d.,]+(?:[eE][-+]?\d+)?)\s*(?:%|[a-zA-Z][a-zA-Z /^²³]*)?$")


def to_number(s: str) -> float | None:
    """A plain number from text: '2,340', '0.75', '3/4', '\\frac{3}{4}', '84 square metres', '$12'."""
    s = (s or "").strip().strip("$").strip()
    s = re.sub(r"\\(?:,|!|;|quad)|\\text\{[^}]*\}|\\mathrm\{[^}]*\}", "", s).strip()
    s = s.replace("\\%", "").replace("£", "").replace("€", "").replace("\\$", "").strip()
    m = _UNITS.match(s)
    if m:
        s = m.group(1).replace("$", "").replace(" ", "")
    if _NUM.match(s):
        return float(s.replace(",", ""))
    m = _LATEX_FRAC.match(s)
    if m:
        if int(m.group(3)) == 0:
            return None
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return float(-v if m.group(1) else v)
    if re.fullmatch(r"[-+]?\d+\s*/\s*\d+", s):
        try:
            return float(Fraction(s.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def output_candidates(stdout: str) -> list[str]:
    """What the snippet 'answered': its last printed line, that line's trailing number, the whole output."""
    lines = [ln.strip() for ln in (stdout or "").strip().splitlines() if ln.strip()]
    if not lines:
        return []
    cands = [lines[-1]]
    m = _TRAILING_NUM.search(lines[-1])
    if m and m.group(0) != lines[-1]:
        cands.append(m.group(0))
    if len(lines) > 1:
        cands.append(" ".join(lines))
    return cands


def _symbolic(expected: str, got: str) -> bool:
    from math_verify import parse, verify
    main = threading.current_thread() is threading.main_thread()
    kw = {} if main else {"parsing_timeout": None}     # math-verify's timeouts use SIGALRM (main thread only)
    vkw = {} if main else {"timeout_seconds": None}
    gold = parse(expected if "$" in expected else f"${expected}$", **kw)
    if not gold:
        return False
    targets = []
    try:                                             # Python-printed values: sqrt(3)/2, x**2 + 1, (1, 2)
        import sympy
        from sympy.parsing.sympy_parser import parse_expr, standard_transformations, \
            implicit_multiplication_application
        try:
            lit = ast.literal_eval(got)
            if isinstance(lit, (list, tuple, set)):
                targets.append(sympy.Tuple(*[sympy.nsimplify(x) if isinstance(x, float) else sympy.sympify(x)
                                             for x in lit]))
        except (ValueError, SyntaxError, TypeError, sympy.SympifyError):
            pass
        if len(got) < 300 and not targets:
            # math-verify's symbols are real; give the printed expression the same symbols by name
            names = {str(sym): sym for g in gold if hasattr(g, "free_symbols") for sym in g.free_symbols}
            targets.append(parse_expr(got.replace("^", "**"), evaluate=True,
                                      transformations=standard_transformations + (implicit_multiplication_application,),
                                      local_dict=names))
    except Exception:                                # noqa: BLE001 - any sympy failure means "not this way"
        pass
    targets += parse(got if "$" in got else f"${got}$", **kw)
    for t in targets:
        try:
            if verify(gold, t, **vkw) or verify(gold, [t], **vkw):
                return True
        except Exception:                            # noqa: BLE001
            continue
    return False


def stated_value(result: str, tolerance: float = 0.01) -> str:
    """The value a stated result gives: itself, or the last side of a result written as a computation
    (``16 - 32 - 2 = -18`` -> ``-18``) when every other side is a name (``r``) or evaluates to that last side.
    Lists (``x = 3, y = 4``), alternatives (``x = -1 or x = 6``) and sides that disagree
    (``150 \\times 60 = 2.5``) stay as written, so they are compared, grounded and checked as a whole."""
    result = (result or "").strip()
    sides = [sd.strip() for sd in re.split(r"(?<![<>!=])=(?!=)|\\approx", result)]
    if len(sides) < 2 or re.search(r"[,;]|\\text|\\quad|\bor\b|\band\b", result):
        return result
    last = to_number(sides[-1])
    if last is None or not math.isfinite(last):
        return result
    from .grounding import evaluate_latex
    for sd in sides[:-1]:
        if re.fullmatch(r"[A-Za-z]\w*(?:_\{?\w+\}?)?", sd):
            continue
        v = evaluate_latex(sd)
        if v is None or abs(v - last) > tolerance:
            return result
    return sides[-1]


def compare(expected: str, stdout: str, tolerance: float = 0.01) -> tuple[bool, str, str]:
    """(match, method, the candidate judged). Methods: 'numeric', 'symbolic', or why it failed."""
    expected = stated_value(expected, tolerance)
    cands = output_candidates(stdout)
    if not cands:
        return False, "no output", ""
    if not expected:
        return False, "no stated result", cands[0]
    x = to_number(expected)
    for c in cands:
        y = to_number(c)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            if abs(x - y) <= tolerance or abs(x - y) <= 1e-9 * max(abs(x), abs(y)):
                return True, "numeric", c
    for c in cands:
        if _symbolic(expected, c):
            return True, "symbolic", c
    return False, "numeric mismatch" if x is not None and to_number(cands[0]) is not None else "not equivalent", cands[0]


def judge(block, run, tolerance: float = 0.01, passage: str | None = None, copied: bool = False) -> dict:
    """Outcome of one parsed block given its sandbox run (``run`` is None when it never ran).

    ``passage`` is the text the block was translated from (None skips the grounding check: only for
    callers that have no passage). Returns outcome, reason, got, method and ``checks`` (every verdict).
    """
    def out(outcome, reason="", got="", method="", **checks):
        return {"outcome": outcome, "reason": reason, "got": got[:300], "method": method, "checks": checks,
                "result_reread": reread if outcome == "verified" else ""}
    reread = ""
    if block.parse_error:
        return out("unparsable", block.parse_error)
    if copied:
        return out("copied", "copied from the worked example, not translated from the passage")
    if run is None:
        return out("error", "not executed")
    if run.status != "ok":
        last = (run.stderr or "").strip().splitlines()
        why = {"timeout": "wall-clock timeout"}.get(run.status) or (last[-1][:300] if last else
                                                                   f"{run.status} (exit code {run.returncode})")
        return out(run.status if run.status in OUTCOMES else "error", why)
    if not (run.stdout or "").strip():
        return out("no_output", "printed nothing")
    ok, method, got = compare(block.result, run.stdout, tolerance)
    result, reread = stated_value(block.result, tolerance), ""
    if not ok:
        from .grounding import reread_result
        reread = reread_result(block.expression, run.stdout, passage, tolerance) if passage is not None else ""
        if not reread:
            return out("wrong_result", method, got)
        result, method, got = reread, "numeric, result re-read from the passage", output_candidates(run.stdout)[0]
    from .dataflow import typed_in
    from .grounding import consistent, grounded
    g, g_why = grounded(result, passage) if passage is not None else (True, "not checked")
    hard, h_why = typed_in(block.code)
    cons, c_why = consistent(block.expression, result, tolerance)
    checks = {"output_matches": True, "grounded": g, "computed": not hard, "consistent": cons}
    for failed, outcome, why in ((not g, "ungrounded", g_why), (hard, "hardcoded", h_why),
                                 (cons is False, "inconsistent", c_why)):
        if failed:
            return out(outcome, why, got, **checks)
    if reread:
        checks["result_reread"] = True
    return out("verified", "", got, method, **checks)
