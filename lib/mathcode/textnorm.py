"""Text normalisation shared by the classifier, near-dedup and decontamination (one definition, so the
notebook, the streaming route and the datatrove route see the same tokens)."""
from __future__ import annotations

import re

_FT = re.compile(r"\\[A-Za-z]+|[A-Za-z]+|\d+|[^\sA-Za-z\d]")
_WORD = re.compile(r"\w+", re.U)


def ft_line(text: str, max_tokens: int = 2000) -> str:
    """fastText input: lowercase token stream where LaTeX commands (``\\frac``), words, numbers and each math
    symbol (``= ^ _ { } $ +``) are separate tokens — fastText only sees whitespace-separated tokens, and the
    symbols are what tells math from prose. Numbers collapse to ``<num>`` so digits do not dominate."""
    toks = _FT.findall(text.lower())[:max_tokens]
    return " ".join("<num>" if t.isdigit() else t for t in toks)


def words(text: str) -> list[str]:
    """Lowercased word tokens (punctuation and LaTeX markup dropped) for n-gram matching and shingles."""
    return _WORD.findall(text.lower())

