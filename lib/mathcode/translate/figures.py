"""Yield of a translation run: where passages are lost, per source, and examples to read."""
from __future__ import annotations

import pandas as pd

STAGES = ["passages", "replies", "parsed blocks", "ran", "output matches", "verified", "passages verified"]


def funnel(passages: list[dict], replies: list[dict], blocks: list[dict]) -> pd.DataFrame:
    """Rows per source (and 'all'): passages -> non-empty replies -> parsed blocks -> ran cleanly -> printed the
    stated result -> verified (grounded, computed, consistent too) -> passages with at least one verified block."""
    def counts(ps, rs, bs):
        parsed = [b for b in bs if not b.get("reply_level") and b.get("outcome") not in ("unparsable", "copied")]
        return {"passages": len(ps), "replies": sum(bool(r["text"].strip()) for r in rs),
                "parsed blocks": len(parsed), "ran": sum(b.get("exit_status") == "ok" for b in parsed),
                "output matches": sum(bool((b.get("checks") or {}).get("output_matches")) for b in parsed),
                "verified": sum(b["outcome"] == "verified" for b in parsed),
                "passages verified": len({b["passage_id"] for b in parsed if b["outcome"] == "verified"})}
    rows = []
    sources = sorted({p["source"] for p in passages})
    for s in sources:
        pid = {p["id"] for p in passages if p["source"] == s}
        rows.append({"source": s, **counts([p for p in passages if p["id"] in pid],
                                           [r for r in replies if r["passage_id"] in pid],
                                           [b for b in blocks if b["passage_id"] in pid])})
    rows.append({"source": "all", **counts(passages, replies, blocks)})
    df = pd.DataFrame(rows, columns=["source"] + STAGES)
    df["verified with result re-read"] = [
        sum(b["outcome"] == "verified" and bool(b.get("result_reread")) for b in blocks
            if s == "all" or b.get("source") == s) for s in df["source"]]
    df["share of passages verified"] = (df["passages verified"] / df["passages"].where(df["passages"] > 0)).round(3)
    return df


def rule_removals(blocks: list[dict]) -> pd.DataFrame:
    """How many blocks each check removes among those whose output matched their stated result (the old
    criterion): on its own (``fails``), and as the first failing check in ``verify.judge`` order (``removes``)."""
    from mathcode.translate.verify import NEW_RULES
    matched = [b for b in blocks if (b.get("checks") or {}).get("output_matches")]
    key = {"ungrounded": ("grounded", False), "hardcoded": ("computed", False), "inconsistent": ("consistent", False),
           "bad_text": ("text", False)}
    rows = [{"rule": r, "check": key[r][0], "output matched": len(matched),
             "fails": sum((b.get("checks") or {}).get(key[r][0]) is key[r][1] for b in matched),
             "removes": sum(b["outcome"] == r for b in matched)} for r in NEW_RULES]
    return pd.DataFrame(rows, columns=["rule", "check", "output matched", "fails", "removes"])


def _sentence_with(text: str, result: str) -> str:
    """The sentence of ``text`` that states ``result`` (grounding's evidence), else the passage's last one."""
    import re
    from mathcode.translate.grounding import normalise_latex, passage_numbers
    from mathcode.translate.verify import to_number
    sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text or "") if s.strip()]
    x = to_number(result)
    for s in sents:
        if (x is not None and any(abs(v - x) <= 1e-9 * max(1, abs(x)) for v, _ in passage_numbers(s))) or \
                (normalise_latex(result) and normalise_latex(result) in normalise_latex(s)):
            return s
    return sents[-1] if sents else ""


def spot_check(passages: list[dict], blocks: list[dict], n: int = 8) -> pd.DataFrame:
    """Verified blocks next to the passage sentence they translate: what a class reads to judge the data."""
    text = {p["id"]: p["text"] for p in passages}
    rows = [{"passage": text.get(b["passage_id"], ""),
             "passage sentence": _sentence_with(text.get(b["passage_id"], ""), b["result"]),
             "stated result": b["result"] + (f" (model said {b['stated_result']})" if b.get("result_reread") else ""),
             "code": b["code"], "output": (b.get("stdout") or "").strip()[-400:]}
            for b in blocks if b["outcome"] == "verified"][:n]
    return pd.DataFrame(rows, columns=["passage", "passage sentence", "stated result", "code", "output"])


def outcomes(blocks: list[dict]) -> pd.DataFrame:
    """Count of every outcome (verified and each rejection reason, in ``verify.OUTCOMES`` order) per source."""
    from mathcode.translate.verify import OUTCOMES
    df = pd.DataFrame([{"source": b["source"], "outcome": b["outcome"]} for b in blocks],
                      columns=["source", "outcome"])
    cols = OUTCOMES + sorted(set(df["outcome"]) - set(OUTCOMES))
    t = df.groupby(["source", "outcome"]).size().unstack(fill_value=0) if len(df) else pd.DataFrame()
    for o in cols:
        if o not in t.columns:
            t[o] = 0
    return t[cols].reset_index() if len(t) else pd.DataFrame(columns=["source"] + cols)


def funnel_figure(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    import seaborn as sns
    long = df[df["source"] != "all"].melt(id_vars="source", value_vars=STAGES, var_name="stage", value_name="count")
    if long.empty:
        long = df.melt(id_vars="source", value_vars=STAGES, var_name="stage", value_name="count")
    fig, ax = plt.subplots(figsize=(10, 4))
    sns.barplot(data=long, x="stage", y="count", hue="source", order=STAGES, ax=ax)
    for cont in ax.containers:                       # every bar says its count, also the zeros
        ax.bar_label(cont, fmt="%d", fontsize=8, padding=1)
    ax.set_title("Translation yield: where passages are lost")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(title="source", fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def outcome_figure(t: pd.DataFrame):
    """Horizontal bars of the outcomes that occurred (verified green, rejections red), each labelled with its count."""
    import matplotlib.pyplot as plt
    totals = t.drop(columns="source").sum() if len(t) else pd.Series(dtype=int)
    totals = totals[totals > 0]                      # only outcomes that happened: no row of empty categories
    fig, ax = plt.subplots(figsize=(9, 0.5 * max(1, len(totals)) + 1.3))
    if len(totals):
        order = list(totals.index)
        ys = range(len(order))
        colours = ["#2a7" if o == "verified" else "#c0392b" for o in order]
        ax.barh(ys, [totals[o] for o in order], color=colours)
        for y, o in zip(ys, order):
            ax.text(totals[o], y, f" {int(totals[o])}", va="center", fontsize=11)
        ax.set_yticks(list(ys), order, fontsize=11)
        ax.invert_yaxis()
        ax.set_xlim(0, totals.max() * 1.15)
        ax.set_xlabel("blocks")
        ax.set_title(f"{int(totals.get('verified', 0))} of {int(totals.sum())} blocks verified; the others by the "
                     "first check they failed")
    else:
        ax.text(0.5, 0.5, "no blocks were written", ha="center", va="center")
        ax.axis("off")
    fig.tight_layout()
    return fig


def examples(blocks: list[dict], outcome: str, n: int = 2) -> list[dict]:
    """The first ``n`` blocks with an outcome, trimmed for display."""
    keep = ["id", "outcome", "reason", "result", "got", "code", "stdout"]
    return [{k: (str(b.get(k, ""))[:400]) for k in keep} for b in blocks if b["outcome"] == outcome][:n]


def rejected_examples(blocks: list[dict]) -> pd.DataFrame:
    """One block per rejection reason (the first seen), with what it stated, printed and why it was rejected."""
    seen, rows = set(), []
    for b in blocks:
        if b["outcome"] != "verified" and b["outcome"] not in seen:
            seen.add(b["outcome"])
            rows.append({"outcome": b["outcome"], "reason": str(b.get("reason", ""))[:300],
                         "stated result": b.get("result", ""), "printed": str(b.get("got", ""))[:200],
                         "code": str(b.get("code", ""))})
    return pd.DataFrame(rows, columns=["outcome", "reason", "stated result", "printed", "code"])


def sources_figure(tab: pd.DataFrame):
    """Documents per source and how many carry computation passages (``workflow.source_table``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(7, 2.8))
    if len(tab):
        sns.barplot(data=tab.melt(id_vars="source", var_name="count", value_name="n"), y="source", x="n",
                    hue="count", ax=ax)
        for cont in ax.containers:                   # every bar says its count, also a source with none
            ax.bar_label(cont, fmt="%d", fontsize=9, padding=2)
        ax.set_xlabel("documents")
        ax.set_ylabel("")
    ax.set_title("Documents and documents with computation passages")
    fig.tight_layout()
    return fig
