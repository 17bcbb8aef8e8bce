"""Every figure of phase 1 (seaborn), each returning a matplotlib Figure for ``P.save_figure``; when a step did
not run, a figure that says why (so the notebook needs no branches)."""
from __future__ import annotations


def score_histogram(df, score_col: str = "score", hue: str = "source", threshold: float | None = None, title="",
                    multiple: str = "stack"):
    """``multiple="stack"`` for parts of one population (sources), ``"layer"`` to compare populations (rounds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.histplot(df, x=score_col, hue=hue, bins=20, binrange=(0, 1), multiple=multiple,
                 element="step" if multiple == "layer" else "bars", ax=ax)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1)
        ax.text(threshold, ax.get_ylim()[1] * 0.95, f" threshold {threshold}", va="top")
    ax.set(xlabel="P(math)", ylabel="documents", title=title)
    if ax.get_legend() is not None:                  # beside the axes, off the bars
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def funnel_figure(funnel_df):
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(9, 4.5))
    order = list(dict.fromkeys(funnel_df.sort_values("stage_no")["stage"]))
    sns.barplot(funnel_df, x="stage", y="tokens", hue="source", order=order, ax=ax)
    positive = funnel_df["tokens"][funnel_df["tokens"] > 0]
    log = len(positive) > 1 and positive.max() / positive.min() > 50     # a small source would be a flat line
    if log:
        ax.set_yscale("log")
    ax.set(ylabel="tokens (target tokenizer" + (", logarithmic axis)" if log else ")"), xlabel="",
           title="Tokens per source after each step")
    ax.tick_params(axis="x", rotation=25)
    # legend beside the axes, never over the bars (it hid the one bar that dropped)
    ax.legend(title="source", fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def cluster_sizes_figure(sizes: dict):
    import matplotlib.pyplot as plt
    if not sizes:
        return _note_figure("no near-dedup step (dedup=False) or no documents")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ks = sorted(sizes)
    ax.bar([str(k) for k in ks], [sizes[k] for k in ks])
    ax.set(xlabel="cluster size (1 = unique)", ylabel="clusters", yscale="log", title="Near-duplicate clusters")
    return fig


def decontamination_figure(checked: dict, hits_df, note: str = ""):
    """Per source: documents checked against the benchmark test sets and documents removed, each bar labelled
    "k of n removed" — informative also when nothing was removed (an empty heatmap was not)."""
    import matplotlib.pyplot as plt
    if not checked:
        return _note_figure("no documents reached decontamination")
    removed = {}
    for r in (hits_df.to_dict("records") if len(hits_df) else []):
        removed[r["source"]] = removed.get(r["source"], 0) + int(r["docs"])
    srcs = sorted(checked, key=lambda s: -checked[s])
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(srcs) + 1.4))
    ys = range(len(srcs))
    ax.barh(ys, [checked[s] for s in srcs], color="#c9d9ea", label="checked")
    ax.barh(ys, [removed.get(s, 0) for s in srcs], color="#c0392b", label="removed (shares a benchmark n-gram)")
    for y, s in zip(ys, srcs):
        ax.text(checked[s], y, f"  {removed.get(s, 0)} of {checked[s]} removed", va="center", fontsize=10)
    ax.set_yticks(list(ys), srcs)
    ax.invert_yaxis()
    ax.set_xlim(0, max(checked.values()) * 1.45)
    ax.set_xlabel("documents")
    total = sum(removed.values())
    ax.set_title(("NOT decontaminated: " if note.startswith("NOT") else "") +
                 f"{total} of {sum(checked.values())} documents removed by decontamination")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / max(1, len(srcs)) - 0.12), ncols=2, fontsize=9,
              frameon=False)                         # under the axis: never over a bar or its label
    fig.tight_layout()
    return fig


def hits_heatmap(hits_df):
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if hits_df.empty:
        ax.text(0.5, 0.5, "no benchmark overlap found", ha="center", va="center")
        ax.axis("off")
        return fig
    piv = hits_df.pivot_table(index="source", columns="benchmark", values="docs", aggfunc="sum", fill_value=0)
    sns.heatmap(piv, annot=True, fmt="d", cmap="Reds", ax=ax)
    ax.set(title="Documents removed per benchmark and source")
    return fig


def _note_figure(text: str):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return fig


def classifier_heldout(outcome, threshold: float):
    """Round-2 scores of the held-out seed positives/negatives by source (a note when no classifier was trained)."""
    import pandas as pd
    if outcome.result is None:
        return _note_figure(outcome.note)
    hold = pd.DataFrame(outcome.result.holdout).rename(columns={"score_r2": "score"})
    return score_histogram(hold, threshold=threshold, title="Held-out seed documents: round-2 P(math) per source")


def classifier_pool(outcome, threshold: float):
    """Pool documents' scores under the round-1 and round-2 models (a note when no classifier was trained)."""
    import pandas as pd
    if outcome.result is None:
        return _note_figure(outcome.note)
    texts = [d["text"] for d in outcome.pool]
    ps = pd.DataFrame([{"model": f"round {r}", "score": v}
                       for r, m in ((1, outcome.result.round1), (2, outcome.result.round2)) for v in m.score(texts)])
    return score_histogram(ps, hue="model", threshold=threshold, multiple="layer",
                           title="Pool documents: P(math) under each round's model")
