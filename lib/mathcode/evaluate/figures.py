"""Phase 4's figures: accuracy bars with their intervals (per benchmark, per MATH level and subject). The numbers
behind them come from ``compare``; this module only draws."""
from __future__ import annotations

import pandas as pd

from mathcode.evaluate.compare import accuracy_table


def bar_chart(table: pd.DataFrame, value="accuracy", title="Accuracy per benchmark (Wilson 95% CI)",
              ylabel="accuracy", x: str = "benchmark", ax=None):
    """Seaborn grouped bars (``x`` × model) with the interval drawn as error bars and each bar labelled
    "correct/n" (so a bar of height 0 still says what was measured)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    table = table.assign(**{x: table[x].astype(str)})
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * table[x].nunique() + 2), 3.6))
    sns.barplot(data=table, x=x, y=value, hue="model", ax=ax, errorbar=None)
    models = list(dict.fromkeys(table["model"]))
    benches = list(dict.fromkeys(table[x]))
    counted = {"n", "correct"} <= set(table.columns)
    for cont, m in zip(ax.containers, models):
        sub = table[table.model == m].set_index(x)
        for bar, b in zip(cont, [b for b in benches if b in sub.index]):
            r = sub.loc[b]
            xpos = bar.get_x() + bar.get_width() / 2
            ax.errorbar(xpos, r[value], yerr=[[r[value] - r["ci_low"]], [r["ci_high"] - r[value]]],
                        color="black", capsize=3, lw=1)
            if counted:     # "0/6" says what a bar of height 0 means; the whisker alone looked like data
                ax.text(xpos, r[value] + 0.015, f"{int(r['correct'])}/{int(r['n'])}", ha="center", va="bottom",
                        fontsize=10, weight="bold", bbox=dict(fc="white", ec="none", pad=0.6), zorder=5)
    if float(table[[value, "ci_high"]].max().max()) <= 1.0:     # a share (accuracy): the whole 0..1 scale
        ax.set_ylim(0, 1.05)
    else:                                                       # anything else (e.g. NLL): room for the whiskers
        ax.set_ylim(0, float(table["ci_high"].max()) * 1.12)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("" if x == "benchmark" else x)
    ax.tick_params(axis="x", rotation=20)
    ax.legend(title="model", fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def math_breakdown(rows):
    """MATH accuracy by level and by subject with a two-panel figure; (None, None, None) without MATH rows."""
    math_rows = [r for r in rows if r["benchmark"] == "math"]
    if not math_rows:
        return None, None, None
    import matplotlib.pyplot as plt
    by_level = accuracy_table(math_rows, by=("model", "level")).sort_values("level")
    by_subject = accuracy_table(math_rows, by=("model", "subject"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    bar_chart(by_level, x="level", title="MATH by level", ax=axes[0])
    bar_chart(by_subject, x="subject", title="MATH by subject", ax=axes[1])
    axes[0].get_legend().remove()                       # one legend, beside the right panel
    axes[1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return by_level, by_subject, fig
