"""Figure text a class can read: identifiers such as ``champ_solutions`` or ``tokens_per_s`` become words
("champ solutions", "tokens per s") in every title, axis label, tick label, legend entry and annotation.

Figures are drawn from tables whose column and category names are identifiers (they must stay so: they are keys
in CSV files and manifests), and seaborn puts those names on the axes and in the legends. Rewriting the finished
figure, once, where every figure is saved (``phase.Phase.save_figure``, the report's own figures) keeps the tables
as they are and leaves no figure out. Mathtext (``$x_1$``) keeps its underscores: they are subscripts there.
"""
from __future__ import annotations

import re

_SNAKE = re.compile(r"(?<![\w/.])([A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+)(?![\w/])")


def readable(text: str) -> str:
    """``text`` with every snake_case word written with spaces (mathtext and paths unchanged)."""
    if not text or "_" not in text:
        return text
    # odd pieces of a split on $...$ are mathtext: kept as written
    pieces = re.split(r"(\$[^$]*\$)", text)
    return "".join(p if i % 2 else _SNAKE.sub(lambda m: re.sub(r"_+", " ", m.group(1)), p)
                   for i, p in enumerate(pieces))


def tidy(fig):
    """Rewrite the text of a finished matplotlib figure in place (see the module docstring); returns ``fig``."""
    from matplotlib.text import Text
    fig.canvas.draw()                     # tick labels exist only once the figure has been drawn
    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels()
            ticks.update(id(t) for t in labels)
            texts = [t.get_text() for t in labels]
            if any(readable(t) != t for t in texts):
                # fixed labels at the current positions: a formatter would write the identifiers again on redraw
                axis.set_ticks(axis.get_ticklocs(), [readable(t) for t in texts])
    for t in fig.findobj(Text):
        if id(t) not in ticks:
            s = t.get_text()
            if readable(s) != s:
                t.set_text(readable(s))
    return fig


def snake_case_left(fig) -> list[str]:
    """Every text of ``fig`` that still holds a snake_case identifier (empty after ``tidy``): for tests."""
    from matplotlib.text import Text
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(Text) if readable(t.get_text()) != t.get_text()]
