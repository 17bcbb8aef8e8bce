"""Figures and tables for the phase-3 notebook (seaborn), so the notebook only calls and shows."""
from __future__ import annotations

import pandas as pd


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """Long table (step, split, loss) from the MetricsCallback rows."""
    out = []
    for r in rows:
        if "loss" in r:
            out.append({"step": r["step"], "split": "train", "loss": r["loss"]})
        if "eval_loss" in r:
            out.append({"step": r["step"], "split": "held-out", "loss": r["eval_loss"]})
    return pd.DataFrame(out, columns=["step", "split", "loss"])


def loss_curves(rows: list[dict], before_loss: float | None = None, title: str = ""):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = metrics_frame(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.lineplot(data=df, x="step", y="loss", hue="split", style="split", markers=True, dashes=False, ax=ax)
    if before_loss is not None:
        ax.axhline(before_loss, color="grey", ls=":", label="held-out before training")
        ax.legend()
    ax.set_title(title or "Training and held-out loss (mean token cross-entropy)")
    fig.tight_layout()
    return fig


def throughput_memory(rows: list[dict]):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = pd.DataFrame([r for r in rows if "loss" in r])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    sns.lineplot(data=df, x="step", y="tokens_per_s", ax=axes[0])
    axes[0].set_title("training tokens/s (cumulative mean)")
    sns.lineplot(data=df, x="step", y="peak_mem_mb", ax=axes[1])
    axes[1].set_title("peak memory (MB)")
    fig.tight_layout()
    return fig


def perplexity_bar(before: float, after: float):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = pd.DataFrame({"model": ["base (before)", "base + adapter (after)"], "perplexity": [before, after]})
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.barplot(data=df, x="model", y="perplexity", hue="model", legend=False, ax=ax)
    for i, v in enumerate(df["perplexity"]):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom")
    ax.set_title("Held-out perplexity on math text")
    fig.tight_layout()
    return fig


def parts_bar(part_tokens: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = pd.DataFrame({"part": list(part_tokens), "tokens": list(part_tokens.values())})
    fig, ax = plt.subplots(figsize=(5, 3))
    sns.barplot(data=df, x="part", y="tokens", hue="part", legend=False, ax=ax)
    ax.set_title("Training tokens by mixture part")
    fig.tight_layout()
    return fig
