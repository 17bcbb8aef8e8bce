"""Yield of a translation run: where passages are lost, per source, and examples to read."""
from __future__ import annotations

import pandas as pd

STAGES = ["passages", "replies", "parsed blocks", "ran", "verified"]


def funnel(passages: list[dict], replies: list[dict], blocks: list[dict]) -> pd.DataFrame:
    """Rows per source (and 'all'): passages -> non-empty replies -> parsed blocks -> ran cleanly -> verified."""
    def counts(ps, rs, bs):
        parsed = [b for b in bs if not b.get("reply_level") and b.get("outcome") != "unparsable"]
        return {"passages": len(ps), "replies": sum(bool(r["text"].strip()) for r in rs),
                "parsed blocks": len(parsed), "ran": sum(b.get("exit_status") == "ok" for b in parsed),
                "verified": sum(b["outcome"] == "verified" for b in parsed)}
    rows = []
    sources = sorted({p["source"] for p in passages})
    for s in sources:
        pid = {p["id"] for p in passages if p["source"] == s}
        rows.append({"source": s, **counts([p for p in passages if p["id"] in pid],
                                           [r for r in replies if r["passage_id"] in pid],
                                           [b for b in blocks if b["passage_id"] in pid])})
    rows.append({"source": "all", **counts(passages, replies, blocks)})
    df = pd.DataFrame(rows, columns=["source"] + STAGES)
    df["verified per passage"] = (df["verified"] / df["passages"].where(df["passages"] > 0)).round(3)
    return df


def outcomes(blocks: list[dict]) -> pd.DataFrame:
    """Count of every outcome (verified, wrong_result, error, timeout, no_output, unparsable) per source."""
    from .verify import OUTCOMES
    df = pd.DataFrame([{"source": b["source"], "outcome": b["outcome"]} for b in blocks],
                      columns=["source", "outcome"])
    t = df.groupby(["source", "outcome"]).size().unstack(fill_value=0) if len(df) else pd.DataFrame()
    for o in OUTCOMES:
        if o not in t.columns:
            t[o] = 0
    return t[OUTCOMES].reset_index() if len(t) else pd.DataFrame(columns=["source"] + OUTCOMES)


def funnel_figure(df: pd.DataFrame):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns
    long = df[df["source"] != "all"].melt(id_vars="source", value_vars=STAGES, var_name="stage", value_name="count")
    if long.empty:
        long = df.melt(id_vars="source", value_vars=STAGES, var_name="stage", value_name="count")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=long, x="stage", y="count", hue="source", order=STAGES, ax=ax)
    ax.set_title("Translation yield: where passages are lost")
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def outcome_figure(t: pd.DataFrame):
    import matplotlib.pyplot as plt
    import seaborn as sns
    long = t.melt(id_vars="source", var_name="outcome", value_name="blocks") if len(t) else \
        pd.DataFrame({"source": [], "outcome": [], "blocks": []})
    fig, ax = plt.subplots(figsize=(8, 3.4))
    if len(long):
        sns.barplot(data=long, x="outcome", y="blocks", hue="source", ax=ax)
    ax.set_title("Outcome of every block")
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def examples(blocks: list[dict], outcome: str, n: int = 2) -> list[dict]:
    """The first ``n`` blocks with an outcome, trimmed for display."""
    keep = ["id", "outcome", "reason", "result", "got", "code", "stdout"]
    return [{k: (str(b.get(k, ""))[:400]) for k in keep} for b in blocks if b["outcome"] == outcome][:n]
