"""Figures of ``report.html`` that no single phase draws: the method in one picture, with this run's numbers."""
from __future__ import annotations

import io


def method_figure(steps: list[tuple[str, str]], translator: str = "", model: str = ""):
    """Four boxes (corpus → translation → pretraining → evaluation), each with what this run did, and under the
    translation box the six fields of one translated block. ``steps``: ``report_story.method_steps``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 4.1))
    ax.set_xlim(0, 11)
    ax.set_ylim(0.35, 4.45)                  # the drawing's extent: no empty band under the closing sentence
    ax.axis("off")
    colours = ["#dbe9f6", "#fde3c8", "#e3f1dc", "#eadcf1"]
    w, h, y = 2.25, 1.55, 2.75
    xs = [0.15 + i * 2.75 for i in range(4)]
    for x, (title, body), c in zip(xs, steps, colours):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04,rounding_size=0.12", fc=c, ec="#555"))
        ax.text(x + w / 2, y + h - 0.3, title, ha="center", va="center", fontsize=13, weight="bold")
        ax.text(x + w / 2, y + 0.6, body, ha="center", va="center", fontsize=12)
    for x in xs[:-1]:
        ax.add_patch(FancyArrowPatch((x + w + 0.03, y + h / 2), (x + 2.75 - 0.03, y + h / 2),
                                     arrowstyle="-|>", mutation_scale=22, lw=2, color="#333"))
    sub = ["math text", "conditions", "LaTeX expression", "Python code", "sandbox output", "verdict"]
    sx, sw = 0.35, 1.6
    ax.text(5.5, 2.35, f"one translated block (translator: {translator or '?'})", ha="center", fontsize=11,
            style="italic", color="#444")
    for i, s in enumerate(sub):
        x = sx + i * 1.75
        ax.add_patch(FancyBboxPatch((x, 1.35), sw, 0.65, boxstyle="round,pad=0.03,rounding_size=0.08",
                                    fc="#fff7ee", ec="#c77b30"))
        ax.text(x + sw / 2, 1.675, s, ha="center", va="center", fontsize=11)
        if i:
            ax.annotate("", (x - 0.02, 1.675), (x - 0.15 + 0.0, 1.675),
                        arrowprops=dict(arrowstyle="-|>", color="#c77b30", lw=1.5))
    ax.text(5.5, 0.75, "Only blocks whose code runs, prints the stated result, and whose result appears in the text "
            "and is computed (not typed in)\nbecome training text, next to the math text they came from; "
            f"the model trained on it is {model or '?'}.", ha="center", va="center", fontsize=11)
    fig.tight_layout()
    return fig


def png_bytes(fig, dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt
    from mathcode import figure_text
    figure_text.tidy(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
