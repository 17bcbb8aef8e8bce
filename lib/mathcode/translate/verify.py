"""Decide whether a translated block is trustworthy, and if not, why not.

A block is *verified* only when all of these hold (``judge``):
  * it parsed and did not copy the worked example;
  * its snippet ran cleanly in the sandbox (any other sandbox status is the rejection reason) and printed;
  * the value it printed **at run time** — its final printed value, one value (``values.final_printed``: a run
    that prints several numbers is not verified by one of them) — equals the stated result under the matching
    rule (``values.same``: at the precision the result is written with; exact integers; complex; numpy/sympy
    printing; several values as sets; never ``inf``/``nan``; symbolic via math-verify) (else ``wrong_result``);
  * the stated result is a number (or expression) of the passage, by whole tokens (``grounding.grounded``), and
    the code does not compute only from numbers that are not the passage's (else ``ungrounded``);
  * the printed value is computed from the passage's numbers in the code, decided by re-running the code with
    those numbers perturbed (``metamorphic``, else ``hardcoded``);
  * the stated LaTeX expression, where it evaluates, equals the stated result (``grounding.consistent``, else
    ``inconsistent``);
  * the block's text, which goes into the pretraining data with the code, is the passage's: the conditions are
    grounded in it (``grounding.conditions_grounded``: its numbers, mostly its words, not the worked example's) and
    the expression is LaTeX that parses (``symbolic.expression_parses``), else ``bad_text``.
Everything that reads untrusted text (the snippet's output, the model's LaTeX and code, the passage) runs in
the bounded worker (``bounded``: killed after 1.5 s of its CPU time, 6 s of wall time at most); a block it gives
up on is ``unjudgeable`` and the phase goes on. The re-runs are sandbox runs, bounded by the sandbox.

One repair, never a relaxation: a small translator often computes the right thing but copies the wrong number
into *Computation Result*. When the printed value is what the block's own expression evaluates to *and* the
passage states that value as a result, the result is re-read from the passage (``grounding.reread_result``);
every other check still applies and the funnel counts these blocks separately.

``rule``: "precision" (default) or "paper" — MathCoder2's |difference| <= ``tolerance`` (0.01), kept only for
reproducing the paper's filter.
"""
from __future__ import annotations

import threading
import time

from mathcode.translate import values as VA
from mathcode.translate.bounded import Unjudgeable, allow, default

# the order is the order of the checks in ``judge``: the first failing one names the outcome
OUTCOMES = ["verified", "unparsable", "copied", "error", "timeout", "memory", "output_limit", "killed_leftovers",
            "no_output", "unjudgeable", "wrong_result", "ungrounded", "hardcoded", "inconsistent", "bad_text"]
NEW_RULES = ["ungrounded", "hardcoded", "inconsistent", "bad_text"]   # rules added after "output matches stated result"
RULES = ("precision", "paper")


def to_number(s: str) -> float | None:
    """A plain number from a stated result ('2,340', '0.75', '\\frac{3}{4}', '84 square metres'), else None.
    Plain Python (safe on the host); for reports."""
    v = VA.read_stated(s or "")
    return VA.as_float(v) if isinstance(v, VA.Num) else None


# --- worker side: everything that reads text ----------------------------------------------------------------
def text_checks(stated: str, expression: str, stdout: str, passage: str | None, code: str,
                rule: str = "precision", tolerance: float = 0.01, conditions: str = "") -> dict:
    """Output match, re-read, grounding, consistency and the metamorphic plan of one block. Runs in the bounded
    worker (it parses untrusted text with sympy); returns plain JSON."""
    from mathcode.translate import grounding as G, metamorphic as M, symbolic as S
    printed = VA.final_printed(stdout)
    res = {"match": False, "method": "", "got": printed.text[:300], "why": "", "result": stated, "reread": "",
           "grounded": None, "grounded_why": "", "consistent": None, "consistent_why": "", "plan": None}
    if printed.why:
        res["why"] = printed.why
        return res
    sv = VA.read_stated(stated)
    ok, method = S.same(sv, printed.value, rule, tolerance, up_to_constant=S.is_antiderivative(expression, stated))
    result = stated
    if not ok and passage is not None:
        rr = G.reread_result(expression, printed.value, passage, rule, tolerance)
        if rr:
            ok, method, result = True, "numeric, result re-read from the passage", rr
            res["reread"] = rr
    if not ok:
        res["why"] = f"printed {VA.describe(printed.value)} is not the stated {VA.describe(sv)} ({method})"
        return res
    res.update(match=True, method=method, result=result)
    res["grounded"], res["grounded_why"] = G.grounded(result, passage) if passage is not None else (True, "not checked")
    res["consistent"], res["consistent_why"] = G.consistent(expression, result, rule, tolerance)
    res["plan"] = M.plan(code, passage, result)
    ok_c, why_c = G.conditions_grounded(conditions, passage) if passage is not None else (True, "")
    # an expression that evaluated to the stated result has parsed already: not parsed again
    ok_e, why_e = (True, "") if res["consistent"] is True and "$" not in (expression or "").strip("$ ") \
        else S.expression_parses(expression)
    res["text_ok"], res["text_why"] = ok_c and ok_e, why_c or why_e
    return res


def compare_text(expected: str, stdout: str, rule: str = "precision", tolerance: float = 0.01) -> list:
    from mathcode.translate import symbolic as S
    printed = VA.final_printed(stdout)
    if printed.why:
        return [False, printed.why, printed.text]
    if not (expected or "").strip():
        return [False, "no stated result", printed.text]
    ok, method = S.same(VA.read_stated(expected), printed.value, rule, tolerance,
                        up_to_constant=S.is_antiderivative("", expected))
    return [ok, method, printed.text]


# --- host side ----------------------------------------------------------------------------------------------
def compare(expected: str, stdout: str, tolerance: float = 0.01, rule: str = "precision") -> tuple[bool, str, str]:
    """(match, method, the printed value judged); read in the bounded worker (``unjudgeable`` -> no match)."""
    try:
        return tuple(default().call("compare_text", expected=expected or "", stdout=stdout or "", rule=rule,
                                    tolerance=tolerance))
    except Unjudgeable as e:
        return False, f"unjudgeable: {e}", ""


_RERUN_BOX = None
_RERUN_LOCK = threading.Lock()


def _default_sandbox():
    """A sandbox for the re-runs when the caller passes none (tests, ``block_row`` without a phase)."""
    global _RERUN_BOX
    with _RERUN_LOCK:
        if _RERUN_BOX is None or getattr(_RERUN_BOX, "closed", False):
            import atexit
            from mathcode.translate.execution import Sandbox
            _RERUN_BOX = Sandbox(workers=2)
            atexit.register(_RERUN_BOX.close)
        return _RERUN_BOX


def rerun(code: str, stdout: str, run, plan: dict, sandbox=None) -> tuple[bool | None, str, int]:
    """The metamorphic re-runs of ``metamorphic.plan`` in the sandbox: (computed, why, runs made)."""
    from dataclasses import replace
    from mathcode.translate import metamorphic as M
    if plan.get("why") or not plan.get("inputs"):
        return (*M.decide(plan, stdout, None, [], None), 0)
    box = sandbox or _default_sandbox()
    lim = getattr(box, "limits", None)
    codes = [code, *plan["variants"]] + ([plan["fresh"]] if plan.get("fresh") else [])
    if lim is not None:
        t = min(lim.timeout, max(1.0, 3 * float(getattr(run, "seconds", 0) or 0) + 0.5))
        lim = replace(lim, timeout=t, cpu_s=max(1, min(lim.cpu_s, int(t) + 1)))
        runs = box.run_many(codes, lim)
    else:
        runs = box.run_many(codes)
    control, variants = runs[0], runs[1:1 + len(plan["variants"])]
    fresh = runs[-1] if plan.get("fresh") else None
    return (*M.decide(plan, stdout, control, variants, fresh), len(codes))


def judge(block, run, tolerance: float = 0.01, passage: str | None = None, copied: bool = False, *,
          rule: str = "precision", sandbox=None, worker=None) -> dict:
    """Outcome of one parsed block given its sandbox run (``run`` is None when it never ran).

    ``passage`` is the text the block was translated from (None skips grounding and lets every literal of the
    code count as an input). ``sandbox`` runs the metamorphic re-runs (a private one when None); ``worker`` is
    the bounded reader (the process-wide one when None). Returns outcome, reason, got, method, ``checks`` (every
    verdict), ``judge_seconds`` and ``reruns``."""
    t0 = time.perf_counter()
    reread, reruns = "", 0

    def out(outcome, reason="", got="", method="", **checks):
        return {"outcome": outcome, "reason": reason, "got": (got or "")[:300], "method": method, "checks": checks,
                "result_reread": reread if outcome == "verified" else "",
                "judge_seconds": round(time.perf_counter() - t0, 4), "reruns": reruns}
    if rule not in RULES:
        raise ValueError(f"rule={rule!r}; use one of {RULES}")
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
    try:
        t = (worker or default()).call("text_checks", stated=block.result or "", expression=block.expression or "",
                                       stdout=run.stdout, passage=passage, code=block.code or "", rule=rule,
                                       tolerance=tolerance, conditions=block.conditions or "")
    except Unjudgeable as e:
        return out("unjudgeable", str(e))
    if not t["match"]:
        return out("wrong_result", t["why"], t["got"])
    reread = t["reread"]
    computed, h_why, reruns = rerun(block.code, run.stdout, run, t["plan"], sandbox)
    g, cons, g_why = t["grounded"], t["consistent"], t["grounded_why"]
    made_up = (t["plan"] or {}).get("ungrounded_operands")
    if g and made_up:                                   # the code's operands are not the passage's numbers
        g, g_why = False, f"the code's operands ({', '.join(made_up)}) are not numbers of the passage"
    if g and (t["plan"] or {}).get("unrelated_inputs"):  # computed from a date, not from the computation's operands
        g, g_why = False, t["plan"]["unrelated_inputs"]
    checks = {"output_matches": True, "grounded": g, "computed": computed, "consistent": cons,
              "text": t.get("text_ok", True)}
    for failed, outcome, why in ((not g, "ungrounded", g_why), (computed is False, "hardcoded", h_why),
                                 (computed is None, "unjudgeable", h_why),
                                 (cons is False, "inconsistent", t["consistent_why"]),
                                 (t.get("text_ok") is False, "bad_text", t.get("text_why", ""))):
        if failed:
            return out(outcome, why, t["got"], t["method"], **checks)
    if reread:
        checks["result_reread"] = True
    return out("verified", "", t["got"], t["method"], **checks)


# the bounded worker calls these two by name
allow("text_checks", __name__, "text_checks")
allow("compare_text", __name__, "compare_text")
