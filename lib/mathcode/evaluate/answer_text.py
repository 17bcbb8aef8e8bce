"""String helpers shared by the benchmark loaders, the answer extractor and the equivalence check: choice letters,
the last ``\\boxed{}`` and the right-hand side of an equation chain. Kept apart so those three modules import it
and not each other."""
from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or None."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text or "")]
    if not starts:
        m = re.findall(r"\\boxed\s+([^\s$]+)", text or "")       # \boxed 5
        return m[-1] if m else None
    i = starts[-1]
    depth, j = 1, i
    while j < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return text[i:j - 1].strip() if depth == 0 else None



def rhs(ans: str) -> str:
    """Right-hand side of an equation chain ("9 * 2 = 18" -> "18"); unchanged without '='."""
    parts = re.split(r"(?<![<>!])=(?!=)", ans)
    return parts[-1].strip() if len(parts) > 1 and parts[-1].strip() else ans
