"""``run_dir/report.html``: one page per run with each phase's status, key numbers and figures,
linking the executed notebooks (rendered to HTML). Self-contained (figures embedded) so it can be
mailed or projected in class."""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from . import paths
from .manifest import read as read_manifest
from .util import atomic_write_text

TITLES = {"01_data": "1 · Data sampling", "02_translation": "2 · Translation to mathematical code",
          "03_pretraining": "3 · QLoRA continued pretraining", "04_evaluation": "4 · Evaluation"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
section{border-top:1px solid #ddd;padding-top:.6em;margin-top:1.6em}
.status{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.85em;color:#fff}
.complete{background:#2a7}.failed{background:#c33}.running{background:#e90}.missing{background:#999}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:520px} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} code{background:#f4f4f4;padding:0 .2em} .err{color:#c33;white-space:pre-wrap}
"""


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        s = json.dumps(v, default=str)
        return s if len(s) < 160 else s[:157] + "…"
    return str(v)


def _figures(pdir: Path) -> list[tuple[Path, str]]:
    fdir = pdir / "figures"
    if not fdir.is_dir():
        return []
    idx = fdir / "index.json"
    listed = json.loads(idx.read_text()) if idx.exists() else []
    seen = {f["file"] for f in listed}
    items = [(fdir / f["file"], f.get("caption", "")) for f in listed if (fdir / f["file"]).exists()]
    items += [(p, "") for p in sorted(fdir.glob("*.png")) if p.name not in seen]
    return items


def write_report(run_dir) -> Path:
    run_dir = paths.resolve_path(run_dir)
    recipe = json.loads((run_dir / "recipe.json").read_text()) if (run_dir / "recipe.json").exists() else {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>MathCoder2 kit — {html.escape(run_dir.name)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>MathCoder2 kit — run <code>{html.escape(run_dir.name)}</code></h1>",
             f"<p class='sub'>recipe <code>{html.escape(str(recipe.get('config', '?')))}</code> · model "
             f"<code>{html.escape(str(recipe.get('model', '?')))}</code> · written {time.strftime('%Y-%m-%d %H:%M')}</p>"]
    if recipe.get("description"):
        parts.append(f"<p>{html.escape(recipe['description'])}</p>")
    if recipe.get("ablation_root"):
        parts.append(f"<p>One run of an ablation (arm <b>{html.escape(str(recipe.get('ablation_arm')))}</b>, seed "
                     f"{html.escape(str(recipe.get('seed')))}); the comparison of all arms is in "
                     f"<a href='{html.escape(recipe['ablation_root'])}/report.html#ablation'>the ablation's report</a>.</p>")
    parts.append("<table><tr><th>phase</th><th>status</th><th>seconds</th><th>notebook</th></tr>")
    is_ablation = (run_dir / "ablation" / "plan.json").exists()
    for key, title in TITLES.items():
        m = read_manifest(run_dir / key) or {}
        st = m.get("status", "missing")
        if st == "missing" and is_ablation and key in ("03_pretraining", "04_evaluation"):
            st = "per arm: see the Ablation section"
        nb = run_dir / key / f"{key}.html"
        link = f"<a href='{key}/{key}.html'>executed notebook</a>" if nb.exists() else ""
        cls = st if st in ("complete", "failed", "running") else "missing"
        parts.append(f"<tr><td><a href='#{key}'>{title}</a></td><td><span class='status {cls}'>{html.escape(st)}</span></td>"
                     f"<td>{m.get('seconds', '')}</td><td>{link}</td></tr>")
    parts.append("</table>")
    if (run_dir / "ablation" / "plan.json").exists():
        parts.append(ablation_section(run_dir))
    for key, title in TITLES.items():
        pdir = run_dir / key
        m = read_manifest(pdir)
        parts.append(f"<section id='{key}'><h2>{title}</h2>")
        if not m:
            parts.append("<p>not run.</p></section>")
            continue
        st = m.get("status")
        parts.append(f"<p><span class='status {st}'>{st}</span> notebook <code>{html.escape(m.get('notebook', ''))}"
                     f"</code> · <a href='{key}/{key}.html'>executed notebook</a> · "
                     f"<a href='{key}/manifest.json'>manifest</a></p>")
        if m.get("error"):
            e = m["error"]
            parts.append(f"<p class='err'>{html.escape(e.get('type', ''))}: {html.escape(e.get('message', ''))} "
                         f"(cell {e.get('cell_index')})</p>")
        metrics = m.get("metrics") or {}
        if metrics:
            parts.append("<table><tr><th>key figure</th><th>value</th></tr>")
            parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items()]
            parts.append("</table>")
        for f, cap in _figures(pdir):
            b64 = base64.b64encode(f.read_bytes()).decode()
            parts.append(f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(f.stem)}'>"
                         f"<figcaption><b>{html.escape(f.stem)}</b> {html.escape(cap)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    atomic_write_text(out, "\n".join(parts))
    return out


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def ablation_section(root: Path) -> str:
    """The arms of an ablation side by side: corpus shares, paired differences with intervals, a sentence each,
    the figures, and links to every arm's own report."""
    import pandas as pd
    ab = root / "ablation"
    plan = json.loads((ab / "plan.json").read_text())
    summary = json.loads((ab / "summary.json").read_text()) if (ab / "summary.json").exists() else {}
    out = [f"<section id='ablation'><h2>Ablation: {' vs. '.join(html.escape(a) for a in plan['arms'])}</h2>",
           f"<p>Phases 1–2 ran once (this folder); phases 3–4 ran for every arm × training seed "
           f"({', '.join(map(str, plan['seeds']))}) in <code>arms/</code>, each with its own manifests, all evaluated "
           f"on identical items and prompts. Differences are <i>arm − {html.escape(plan['reference'])}</i>, paired per "
           f"item and seed; intervals are {int(100 * plan['ci'])}% bootstrap intervals resampling items and seeds "
           f"({plan['bootstrap']} replicates).</p>"]
    tok = summary.get("corpus_tokens") or {}
    if tok:
        out.append(f"<p><b>Translated code in the training data:</b> {tok['translated_tokens']:,} of "
                   f"{tok['basic_tokens'] + tok['translated_tokens']:,} tokens of basic+translated "
                   f"(<b>{100 * tok['translated_share']:.1f}%</b>; the paper: 14.1% of MathCode-Pile)"
                   + (f"; the token-matched arm repeats basic documents up to {tok['token_matched_tokens']:,} tokens"
                      if tok.get("token_matched_tokens") else "") + ".</p>")
    shares = summary.get("training_token_shares") or []
    if shares:
        out.append("<p>Training tokens as phase 3 packed them (per arm run):</p>")
        out.append(_table([{**r, "translated_share": r.get("translated_share")} for r in shares],
                          ["arm", "seed", "train_tokens", "translated_share", "steps", "heldout_ppl_after"]))
    comp = ab / "comparison.csv"
    t = pd.read_csv(comp) if comp.exists() and comp.stat().st_size > 1 else pd.DataFrame()
    if len(t):
        if summary.get("conclusion"):
            out.append(f"<p><b>{html.escape(summary['conclusion'])}</b></p>")
        out.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in t["sentence"]) + "</ul>")
        out.append(_table(t.to_dict("records"), [c for c in ("benchmark", "metric", "arm", "reference", "n_items",
                                                             "n_seeds", "reference_mean", "arm_mean", "diff", "ci_low",
                                                             "ci_high", "mde", "excludes_zero") if c in t.columns]))
    else:
        out.append("<p>No arm has finished its evaluation yet.</p>")
    for f, cap in _figures(ab):
        b64 = base64.b64encode(f.read_bytes()).decode()
        out.append(f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(f.stem)}'>"
                   f"<figcaption><b>{html.escape(f.stem)}</b> {html.escape(cap)}</figcaption></figure>")
    ident = summary.get("evaluation_identity") or {}
    rows = []
    for r in plan["runs"]:
        d = root / r["dir"]
        m3 = read_manifest(d / "03_pretraining") or {}
        m4 = read_manifest(d / "04_evaluation") or {}
        link = f"<a href='{r['dir']}/report.html'>report</a>" if (d / "report.html").exists() else ""
        idn = ident.get(r["dir"], {})
        rows.append(f"<tr><td>{html.escape(r['arm'])}</td><td>{r['seed']}</td>"
                    f"<td><span class='status {m3.get('status', 'missing')}'>{m3.get('status', 'missing')}</span> "
                    f"{m3.get('seconds', '')}</td><td><span class='status {m4.get('status', 'missing')}'>"
                    f"{m4.get('status', 'missing')}</span> {m4.get('seconds', '')}</td>"
                    f"<td>{idn.get('items', '')} / <code>{idn.get('items_sha', '')}</code></td><td>{link}</td></tr>")
    out.append("<p>Arm runs (phase status and seconds; evaluated items and the hash of their ids + prompt hashes — "
               "identical across arms by check):</p><table><tr><th>arm</th><th>seed</th><th>3 · pretraining</th>"
               "<th>4 · evaluation</th><th>items / hash</th><th></th></tr>" + "".join(rows) + "</table>")
    if summary.get("wall_seconds_this_invocation") is not None:
        out.append(f"<p>Wall time of the last <code>run</code> invocation: {summary['wall_seconds_this_invocation']} s "
                   f"(phases already up to date are skipped and cost nothing).</p>")
    out.append("</section>")
    return "\n".join(out)
