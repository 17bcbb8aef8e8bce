"""Read the model's reply back into blocks of (conditions, expression, result, code).

Models — small ones especially — vary the format: bold or markdown headers, numbered headers
("1. Computation Result:"), the header on its own line or with the value after it, code with or
without a fence, several computations in one reply, a missing result that the expression states
(``$12 \\times 7 = 84$``), conditions written as numbered "1. Given: ..." lines (read as conditions, not
as a new block). Everything that cannot be read is kept with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, asdict

_NAMES = [  # longest first so that "Computation Result" is not read as "Computation …"
    ("conditions", r"conditions?\s+needed|conditions?|given"),
    ("expression", r"computation\s+expression|math(?:ematical)?\s+expression|expression|latex\s+expression"),
    ("result", r"computation\s+result|final\s+result|result|answer"),
    ("code", r"python\s+code\s+snippet|python\s+code|code\s+snippet|python\s+snippet|python|code"),
]
_HEADER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:[-*+]\s+)?(?:\(?\d+[.)]\s*)?(?:step\s+\d+[.:]?\s*)?(?P<b1>\*\*|__)?\s*(?:\d+[.)]\s*)?"
    r"(?P<name>" + "|".join(f"(?P<{k}>{v})" for k, v in _NAMES) + r")"
    r"(?:\s*\d+)?\s*(?P<b2>\*\*|__)?\s*(?P<colon>:)?\s*(?:\*\*|__)?[ \t]*(?P<rest>.*)$", re.I)
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


@dataclass
class Block:
    index: int
    conditions: str = ""
    expression: str = ""
    result: str = ""
    code: str = ""
    parse_error: str = ""       # empty when the block is complete
    result_from_expression: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _header(line: str):
    m = _HEADER.match(line)
    if not m:
        return None
    # a real header has a colon, or is bold/markdown and alone on its line
    if not m.group("colon") and not ((m.group("b1") or line.lstrip().startswith("#")) and not m.group("rest").strip()):
        return None
    field = next(k for k, _ in _NAMES if m.group(k))
    return field, m.group("rest")


def clean_math(s: str) -> str:
    """Strip what wraps a value: $…$, \\(…\\), \\[…\\], bold, a trailing full stop."""
    s = s.strip().strip("*_").strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("`", "`")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            s = s[len(a):len(s) - len(b)].strip()
    s = re.sub(r"^\\boxed\{(.*)\}$", r"\1", s.strip())
    return s.rstrip(".").strip()


def extract_code(text: str) -> str:
    m = _FENCE.search(text)
    if m:
        return m.group(1).strip("\n")
    body = [ln for ln in text.strip("\n").splitlines() if not ln.strip().startswith("```")]
    return "\n".join(body).strip("\n")


def parse_reply(reply: str) -> tuple[list[Block], str]:
    """Blocks found in ``reply`` (complete or not) and a reply-level error ('' when something was found)."""
    if not reply or not reply.strip():
        return [], "empty reply"
    sections: list[list] = []           # [field, text]
    in_fence = False
    for line in reply.splitlines():
        if line.strip().startswith("```"):          # headers inside code are code (comments, strings)
            in_fence = not in_fence
            if sections:
                sections[-1][1] += line + "\n"
            continue
        h = None if in_fence else _header(line)
        if h and h[0] == "conditions" and sections and sections[-1][0] == "conditions":
            h = None                                # "1. Given: ..." lines inside the conditions are conditions
        if h:
            sections.append([h[0], h[1] + "\n" if h[1].strip() else ""])
        elif sections:
            sections[-1][1] += line + "\n"
    if not sections:
        return [], "no field headers (Conditions Needed / Computation Expression / Computation Result / Python Code Snippet) found"
    blocks: list[Block] = []
    cur: dict = {}

    def flush():
        if cur:
            blocks.append(_make_block(len(blocks), cur))
    for field, text in sections:
        if field in cur or (field == "conditions" and cur):
            flush()
            cur = {}
        cur[field] = text
    flush()
    return blocks, ""


def _make_block(i: int, d: dict) -> Block:
    if "code" not in d:                              # a fence without its header still counts as the code
        for k in ("result", "expression", "conditions"):
            m = _FENCE.search(d.get(k, ""))
            if m:
                d = dict(d, code=m.group(0))
                d[k] = d[k][:m.start()]
                break
    b = Block(index=i, conditions=d.get("conditions", "").strip(), expression=clean_math(d.get("expression", "")),
              result=clean_math(d.get("result", "").strip().splitlines()[0] if d.get("result", "").strip() else ""),
              code=extract_code(d.get("code", "")) if "code" in d else "")
    if not b.result and "=" in b.expression:
        b.result, b.result_from_expression = clean_math(b.expression.rsplit("=", 1)[1]), True
    missing = [n for n, v in (("result", b.result), ("code", b.code)) if not v.strip()]
    if missing:
        b.parse_error = "missing " + " and ".join(missing)
    return b
