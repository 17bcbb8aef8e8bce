"""Optional quality heuristics, each one a step that reports what it removed and why.

Thresholds are deliberately simple and documented so a reader can predict every removal:
  length      drop documents shorter than ``min_chars`` or longer than ``max_chars`` characters;
  symbols     math-symbol density (digits and ``= + - * / ^ _ { } \\ $ < > | ( )`` over non-space chars) outside
              [``min_ratio``, ``max_ratio``] — too low is prose, too high is tables/garbage;
  repetition  duplicated-line fraction above ``max_dup_lines`` or the most frequent word 3-gram covering more
              than ``max_top_trigram`` of the word characters in documents of 50+ words (Gopher's rule, simplified).
"""
from __future__ import annotations

from collections import Counter

from mathcode.data.records import Step
from mathcode.textnorm import words

MATH_CHARS = set("0123456789=+-*/^_{}\\$<>|()")


def symbol_ratio(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(c in MATH_CHARS for c in chars) / len(chars) if chars else 0.0


def dup_line_fraction(text: str) -> float:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if len(lines) < 2:
        return 0.0
    c = Counter(lines)
    return sum(v for v in c.values() if v > 1) / len(lines)


def top_trigram_fraction(text: str) -> float:
    w = words(text)
    if len(w) < 50:                       # short texts (a formula, a hint) repeat symbols by nature
        return 0.0
    grams = Counter(zip(w, w[1:], w[2:]))
    gram, count = grams.most_common(1)[0]
    return count * sum(len(x) for x in gram) / max(1, sum(len(x) for x in w))


class LengthFilter(Step):
    name = "quality:length"

    def __init__(self, min_chars: int = 50, max_chars: int = 100_000):
        self.min_chars, self.max_chars = min_chars, max_chars

    def decide(self, docs):
        out = []
        for d in docs:
            n = len(d["text"])
            if n < self.min_chars:
                out.append((False, {"reason": "too_short", "chars": n}))
            elif n > self.max_chars:
                out.append((False, {"reason": "too_long", "chars": n}))
            else:
                out.append((True, None))
        return out


class SymbolDensityFilter(Step):
    name = "quality:symbols"

    def __init__(self, min_ratio: float = 0.0, max_ratio: float = 0.8):
        self.min_ratio, self.max_ratio = min_ratio, max_ratio

    def decide(self, docs):
        out = []
        for d in docs:
            r = symbol_ratio(d["text"])
            if r < self.min_ratio:
                out.append((False, {"reason": "few_math_symbols", "symbol_ratio": round(r, 4)}))
            elif r > self.max_ratio:
                out.append((False, {"reason": "symbol_soup", "symbol_ratio": round(r, 4)}))
            else:
                out.append((True, None))
        return out


class RepetitionFilter(Step):
    name = "quality:repetition"

    def __init__(self, max_dup_lines: float = 0.3, max_top_trigram: float = 0.3):
        self.max_dup_lines, self.max_top_trigram = max_dup_lines, max_top_trigram

    def decide(self, docs):
        out = []
        for d in docs:
            a = dup_line_fraction(d["text"])
            if a > self.max_dup_lines:
                out.append((False, {"reason": "duplicate_lines", "dup_line_fraction": round(a, 3)}))
                continue
            b = top_trigram_fraction(d["text"])
            if b > self.max_top_trigram:
                out.append((False, {"reason": "repeated_trigram", "top_trigram_fraction": round(b, 3)}))
            else:
                out.append((True, None))
        return out
