"""Every figure and table of phase 3 (seaborn), and its key numbers, so the notebook only calls and shows."""
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


# One colour per split, named: the caption (``loss_caption``) is written from these names, so the words under the
# figure and the lines in it cannot disagree.
LOSS_COLOURS = {"train": "blue", "held-out": "orange"}
_HEX = {"blue": "#1f77b4", "orange": "#ff7f0e"}


def loss_caption() -> str:
    return (f"Loss per step, in nats per token: training ({LOSS_COLOURS['train']}) and held-out "
            f"({LOSS_COLOURS['held-out']}); dotted grey: the held-out loss before training")


def loss_curves(rows: list[dict], before_loss: float | None = None, title: str = ""):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = metrics_frame(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    palette = {k: _HEX[v] for k, v in LOSS_COLOURS.items()}
    sns.lineplot(data=df, x="step", y="loss", hue="split", style="split", markers=True, dashes=False, ax=ax,
                 palette=palette, hue_order=list(LOSS_COLOURS), style_order=list(LOSS_COLOURS))
    if before_loss is not None:
        ax.axhline(before_loss, color="grey", ls=":", label="held-out before training")
        ax.legend()
    ax.set_ylabel("loss (nats per token)")
    ax.set_xlabel("optimizer step")
    ax.set_title(title or f"Loss per step: training in {LOSS_COLOURS['train']}, held-out in {LOSS_COLOURS['held-out']}")
    fig.tight_layout()
    return fig


def throughput_memory(rows: list[dict]):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = pd.DataFrame([r for r in rows if "loss" in r])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    sns.lineplot(data=df, x="step", y="tokens_per_s", ax=axes[0])
    axes[0].set(title="Training throughput (cumulative mean)", ylabel="tokens per second", xlabel="optimizer step")
    sns.lineplot(data=df, x="step", y="peak_mem_mb", ax=axes[1])
    axes[1].set(title="Peak memory", ylabel="MB", xlabel="optimizer step")
    fig.tight_layout()
    return fig


def perplexity_bar(before: float, after: float, tokens: int | None = None):
    """Held-out perplexity before/after; ``tokens``: how many held-out tokens it is measured on (in the title)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = pd.DataFrame({"model": ["base (before)", "base + adapter (after)"], "perplexity": [before, after]})
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.barplot(data=df, x="model", y="perplexity", hue="model", legend=False, ax=ax)
    for i, v in enumerate(df["perplexity"]):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom")
    ax.set_title("Held-out perplexity on math text" + (f"\n({tokens:,} held-out tokens)" if tokens else ""))
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def parts_bar(part_tokens: dict, block_size: int | None = None):
    """Training tokens per mixture part, each bar labelled with its count and share. A part 100x smaller than
    another (a few hundred translated tokens beside 160,000 basic ones) is invisible on a linear axis: the axis is
    logarithmic then, and says so."""
    import matplotlib.pyplot as plt

    parts = {k: int(v) for k, v in part_tokens.items()}
    total = sum(parts.values())
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * max(1, len(parts)) + 1.5))
    if not total:
        ax.text(0.5, 0.5, "no training tokens", ha="center", va="center")
        ax.axis("off")
        return fig
    names = list(parts)
    ys = range(len(names))
    ax.barh(ys, [max(parts[n], 0) for n in names], color=["#c77b30" if "translat" in n else "#4c72b0" for n in names])
    positive = [v for v in parts.values() if v > 0]
    log = len(positive) > 1 and max(positive) / min(positive) > 20
    if log:
        ax.set_xscale("log")
        ax.set_xlim(1, max(positive) * 30)           # from 1 token: a bar's length is its order of magnitude
    else:
        ax.set_xlim(0, max(positive) * 1.45)
    for y, n in zip(ys, names):
        share = 100 * parts[n] / total
        ax.text(max(parts[n], 1), y, f"  {parts[n]:,} tokens ({share:.2g}%)" if share < 1 else
                f"  {parts[n]:,} tokens ({share:.1f}%)", va="center", fontsize=11)
    ax.set_yticks(list(ys), names, fontsize=11)
    ax.invert_yaxis()
    ax.set_xlabel("tokens" + (" (logarithmic axis)" if log else ""))
    blocks = f" in {total // block_size:,} blocks of {block_size}" if block_size and total % block_size == 0 else ""
    ax.set_title(f"Training set: {total:,} tokens{blocks}, by mixture part")
    fig.tight_layout()
    return fig


def outcome_sentence(before: dict, after: dict, rows: list[dict], pack_stats: dict | None = None,
                     tokens_trained: int | None = None) -> str:
    """What this run shows, in words, from its numbers (never a fixed claim the run could contradict)."""
    b, a = before["perplexity"], after["perplexity"]
    change = (a - b) / b
    verb = "fell" if a < b else "rose" if a > b else "stayed"
    s = f"Held-out perplexity {verb} from {b:.2f} to {a:.2f} ({change:+.1%}) on documents the adapter never saw."
    losses = [r["loss"] for r in rows if "loss" in r]
    if len(losses) >= 4:
        k = max(1, len(losses) // 4)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        s += (f" The training loss averaged {first:.2f} over the first {k} logged steps and {last:.2f} over the last "
              f"{k} (each step sees other blocks, so single steps are noisy).")
    if pack_stats and tokens_trained:
        total = pack_stats.get("train_tokens") or 0
        by_part = pack_stats.get("train_tokens_by_part") or {}
        part_total = sum(by_part.values()) or 1
        s += f" Training read {tokens_trained:,} tokens"
        if total:
            s += f", {tokens_trained / total:.2f} passes over the {total:,}-token training split"
        if "translated" in by_part:
            s += f"; translated code is {100 * by_part['translated'] / part_total:.1f}% of that split"
        s += "."
    return s


def perplexity_table(before: dict, after: dict) -> pd.DataFrame:
    return pd.DataFrame([{"split": "held-out", "when": "before", **before}, {"split": "held-out", "when": "after", **after}])


def phase_metrics(values: dict, rows: list[dict], before: dict, after: dict, cb, device: str, steps: int,
                  resumed_from, mem: dict, pack_stats: dict, params_info: dict, adapter_dir, merged_dir) -> dict:
    """Key numbers of a phase-3 run for ``P.finish`` (the manifest and the report)."""
    from mathcode.train.trainer import peak_memory_mb
    corpus_files = list(values.get("corpus_files") or [])
    return dict(
        mixture=("files: " + ", ".join(map(str, corpus_files))) if corpus_files else values.get("mixture"),
        device=device, steps=int(steps), resumed_from=resumed_from,
        train_loss_first=next((r["loss"] for r in rows if "loss" in r), None),
        train_loss_last=next((r["loss"] for r in reversed(rows) if "loss" in r), None),
        heldout_loss_before=before["loss"], heldout_loss_after=after["loss"],
        heldout_ppl_before=round(before["perplexity"], 3), heldout_ppl_after=round(after["perplexity"], 3),
        tokens_per_s=round(cb.tokens_per_second, 1), peak_memory_mb=round(peak_memory_mb(device), 1),
        memory_estimate_gib=mem["total_gib"], **pack_stats,   # train_tokens_by_part: how much of what was
        # trained on is translated code (the number the ablation is about)
        **params_info, trainable_share_pct=round(100 * params_info["trainable_params"] / params_info["all_params"], 2),
        outcome=outcome_sentence(before, after, rows, pack_stats,
                                 int(steps) * int(values.get("per_device_batch_size", 0)) *
                                 int(values.get("grad_accum", 1)) * int(values.get("block_size", 0))),
        adapter=str(adapter_dir), merged=str(merged_dir) if merged_dir else None)
