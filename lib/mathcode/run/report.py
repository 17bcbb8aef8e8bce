"""``run_dir/report.html``: one page per run that a class can follow top to bottom — what the run did in sentences
with units, the method in one figure, one verified and one rejected translation block in full, a limitations box —
then each phase's status and figures, linking the executed notebooks (rendered to HTML). Every sentence is generated
from the run's recorded numbers (``report_story``). Self-contained (figures embedded) so it can be mailed or
projected in class."""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from mathcode import paths

from mathcode.run import report_figures, report_story as story
from mathcode.manifest import read as read_manifest
from mathcode.util import atomic_write_text

TITLES = {"01_data": "1 · Data sampling", "02_translation": "2 · Translation to mathematical code",
          "03_pretraining": "3 · QLoRA continued pretraining", "04_evaluation": "4 · Evaluation"}

# What each phase's figures are for, in one sentence (shown above them).
PHASE_WHY = {
    "01_data": "Where the training text comes from and what each filter removed.",
    "02_translation": "How many passages became verified code, and why the others were rejected.",
    "03_pretraining": "What the 4-bit model with LoRA adapters learned from the corpus.",
    "04_evaluation": "The base model and the trained model on identical items and prompts.",
}

# Readable at 1024x768 on a projector: large base font, one column, figures up to the column width.
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:17px;line-height:1.45;max-width:1000px;
margin:.6em auto 1.5em;padding:0 1em;color:#222}
h1{margin:.1em 0 .3em;font-size:1.6em} h1 .run{font-weight:normal;color:#666;font-size:.7em}
h2{margin-top:1.6em} .sub{color:#555;margin-top:0;font-size:.9em}
.definition{font-size:1.12em;margin:.2em 0 .5em} section.first{border-top:none;margin-top:0;padding-top:0}
section.first figure{margin:.3em 0}
.banner{background:#fff8e1;border-left:6px solid #e0b000;padding:.3em .8em;margin:.3em 0}
section{border-top:1px solid #ddd;padding-top:.6em;margin-top:1.6em}
.status{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.85em;color:#fff}
.complete{background:#2a7}.failed{background:#c33}.running{background:#e90}.missing{background:#999}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top;word-break:break-word}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.95em;color:#444} code{background:#f4f4f4;padding:0 .2em} .err{color:#c33;white-space:pre-wrap}
.keynums li{margin:.35em 0}
.limits{background:#fff8e1;border:2px solid #e0b000;border-radius:8px;padding:.4em 1.2em;margin:1.2em 0}
.limits h2{margin-top:.4em}
.example{border:2px solid #999;border-radius:8px;padding:.4em 1em;margin:1em 0}
.example.verified{border-color:#2a7}.example.rejected{border-color:#c33}
.example h3{margin:.3em 0}
.step{display:grid;grid-template-columns:11em 1fr;gap:.2em 1em;margin:.35em 0;align-items:start}
.step .lab{font-weight:bold;color:#555}
.step pre{margin:0;background:#f6f6f6;padding:.4em .6em;white-space:pre-wrap;word-break:break-word;font-size:.9em}
.verdict-ok{color:#186;font-weight:bold}.verdict-no{color:#b22;font-weight:bold}
details{margin:.6em 0} summary{cursor:pointer;color:#236}
"""


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)      # whole: a value cut mid-JSON reads like a fault
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


def _img(data: bytes, alt: str, caption: str, title: str = "") -> str:
    b64 = base64.b64encode(data).decode()
    return (f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(alt)}'>"
            f"<figcaption>{('<b>' + html.escape(title) + '</b> ') if title else ''}{html.escape(caption)}"
            f"</figcaption></figure>")


def _step(label: str, value: str, pre: bool = False) -> str:
    v = f"<pre>{html.escape(value)}</pre>" if pre else f"<div>{html.escape(value)}</div>"
    return f"<div class='step'><div class='lab'>{html.escape(label)}</div>{v}</div>"


def example_html(b: dict, kind: str) -> str:
    """One translation block in reading order: passage sentence -> conditions -> expression -> stated result ->
    code -> sandbox output -> verdict (and the whole passage behind a toggle)."""
    ok = b.get("outcome") == "verified"
    head = ("A verified block: it becomes training text" if ok else
            f"A rejected block ({b.get('outcome')}): it is left out of the training text")
    out = [f"<div class='example {kind}' id='example-{kind}'><h3>{html.escape(head)}</h3>",
           _step("passage sentence", b.get("passage_sentence") or "(not found in the passage)"),
           _step("conditions", b.get("conditions") or "(none written)"),
           _step("expression", b.get("expression") or "(none written)"),
           _step("stated result", str(b.get("result", "")) +
                 (f"  (the model wrote {b['stated_result']}; re-read from the passage)" if b.get("result_reread") else "")),
           *([_step("the translator's reply", b.get("reply_text") or "(empty reply)", pre=True)]
             if not b.get("code") and b.get("outcome") != "verified" else []),
           _step("code", b.get("code") or "(no code could be read from the reply)", pre=True),
           _step("sandbox output", (b.get("stdout") or "").strip() or f"(nothing printed; {b.get('exit_status', 'not run')})",
                 pre=True)]
    verdict = ("verified: ran, printed the stated result, grounded in the passage, computed" if ok else
               f"{b.get('outcome')}: {b.get('reason', '')}")
    out.append(f"<div class='step'><div class='lab'>verdict</div><div class='{'verdict-ok' if ok else 'verdict-no'}'>"
               f"{html.escape(verdict)}</div></div>")
    out.append(f"<details><summary>the whole passage the translator read</summary><pre>"
               f"{html.escape(b.get('passage_text', ''))}</pre></details></div>")
    return "\n".join(out)


# The first screen of the page: what the method is, in two lines, above its figure.
DEFINITION = ("<b>MathCoder2</b> continues the pretraining of a language model on math text together with Python "
              "code that a second model wrote for the computations in that text — keeping only code that runs and "
              "reproduces the text's own result — and then tests the model on math problems.")


def method_html(f: dict) -> str:
    """The definition and the method figure with this run's numbers in its boxes (the page's first screen)."""
    translator = story._short(f["02_translation"]["metrics"].get("model") or f["02_translation"]["parameters"].get(
        "translator_model") or f["model"])
    fig = report_figures.method_figure(story.method_steps(f), translator=translator, model=story._short(f["model"]))
    return ("<section id='method' class='first'><p class='definition'>" + DEFINITION + "</p>"
            + _img(report_figures.png_bytes(fig), "the method in one figure",
                   "The numbers in the boxes are this run's. Below: the run in sentences, one translated block "
                   "in full, and what this run can and cannot show.")
            + "</section>")


def story_html(run_dir: Path, f: dict | None = None) -> str:
    """What a class reads after the method: the run in numbers, one translation in full, the limits."""
    f = f if f is not None else story.facts(run_dir)
    parts = []
    sentences = story.key_numbers(f)
    if sentences:
        parts.append("<section id='summary'><h2>What this run did</h2><ul class='keynums'>"
                     + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul></section>")
    ex = story.worked_examples(run_dir)
    if ex:
        parts.append("<section id='worked-example'><h2>One translation, step by step</h2><p>Read each block top to "
                     "bottom: the sentence of the math text, what the translator wrote (conditions, expression, "
                     "result, code), what the code printed in the sandbox, and the verdict.</p>")
        for kind in ("verified", "rejected"):
            if kind in ex:
                parts.append(example_html(ex[kind], kind))
            else:
                parts.append(f"<p>This run has no {kind} block with code to show.</p>")
        parts.append("</section>")
    lim = story.limitations(f)
    parts.append("<div class='limits' id='limitations'><h2>What this run can and cannot show</h2><ul>"
                 + "".join(f"<li>{html.escape(s)}</li>" for s in lim) + "</ul></div>")
    return "\n".join(parts)


def _in_run(text: str, run_dir: Path) -> str:
    """Paths inside the run folder written relative to it (the page travels; the folder it was written in does
    not)."""
    root = str(Path(run_dir).resolve())
    return text.replace(root + "/", "").replace(root, ".")


def _shown_path(p) -> str:
    """A recipe path as a reader should see it: relative to the kit when inside it (never a clone's temp folder),
    else its file name."""
    p = Path(str(p))
    try:
        return str(p.resolve().relative_to(paths.project_root().resolve()))
    except (ValueError, OSError):
        return p.name


def write_report(run_dir) -> Path:
    run_dir = paths.resolve_path(run_dir)
    recipe = json.loads((run_dir / "recipe.json").read_text()) if (run_dir / "recipe.json").exists() else {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>MathCoder2 kit — {html.escape(run_dir.name)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>MathCoder2, step by step <span class='run'>· run <code>{html.escape(run_dir.name)}</code></span></h1>"]
    rehearsal = _rehearsal(run_dir, recipe)
    if rehearsal:                              # said before any number is read; the details follow the figure
        parts.append("<p class='banner'>A rehearsal at toy scale, not an experiment: no number on this page says "
                     "anything about the real run (<a href='#rehearsal'>what it replaced</a>).</p>")
    f = None
    try:
        f = story.facts(run_dir)
        parts.append(method_html(f))
    except Exception as e:                    # the report never fails a run; say what could not be drawn
        parts.append(f"<p class='err'>The method figure could not be drawn ({html.escape(type(e).__name__)}: "
                     f"{html.escape(str(e))}); the phase sections below are complete.</p>")
    parts.append(f"<p class='sub'>recipe <code>{html.escape(_shown_path(recipe.get('config', '?')))}</code> · model "
                 f"<code>{html.escape(str(recipe.get('model', '?')))}</code> · written {time.strftime('%Y-%m-%d %H:%M')}"
                 f"</p>")
    if rehearsal:
        parts.append(_rehearsal_html(rehearsal, own=(run_dir / "rehearsal.json").is_file()))
    if recipe.get("ablation_root"):
        parts.append(f"<p>One run of an ablation (arm <b>{html.escape(str(recipe.get('ablation_arm')))}</b>, seed "
                     f"{html.escape(str(recipe.get('seed')))}); the comparison of all arms is in "
                     f"<a href='{html.escape(recipe['ablation_root'])}/report.html#ablation'>the ablation's report</a>.</p>")
    try:
        parts.append(story_html(run_dir, f))
    except Exception as e:                    # the report never fails a run; say what could not be summarised
        parts.append(f"<p class='err'>The summary could not be written ({html.escape(type(e).__name__)}: "
                     f"{html.escape(str(e))}); the phase sections below are complete.</p>")
    parts.append("<h2>The four phases</h2><table><tr><th>phase</th><th>status</th><th>seconds</th><th>notebook</th></tr>")
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
        parts.append(f"<p><span class='status {st}'>{st}</span> {html.escape(PHASE_WHY.get(key, ''))} "
                     f"<a href='{key}/{key}.html'>Executed notebook</a> · <a href='{key}/manifest.json'>manifest</a></p>")
        if m.get("error"):
            e = m["error"]
            parts.append(f"<p class='err'>{html.escape(e.get('type', ''))}: {html.escape(e.get('message', ''))} "
                         f"(cell {e.get('cell_index')})</p>")
        for f, cap in _figures(pdir):
            parts.append(_img(f.read_bytes(), f.stem, cap, title=f.stem.replace("_", " ")))
        metrics = m.get("metrics") or {}
        if metrics:
            parts.append("<details><summary>every number this phase recorded (as stored in its manifest)</summary>"
                         "<table><tr><th>key</th><th>value</th></tr>")
            parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(_in_run(_fmt(v), run_dir))}</td></tr>"
                      for k, v in metrics.items()]
            parts.append("</table></details>")
        parts.append("</section>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    atomic_write_text(out, "\n".join(parts))
    return out


def _rehearsal(run_dir: Path, recipe: dict) -> dict | None:
    """The ``rehearsal.json`` of this run folder, or of the ablation root for an arm run (None: a real run)."""
    for d in [run_dir] + ([run_dir / recipe["ablation_root"]] if recipe.get("ablation_root") else []):
        f = d / "rehearsal.json"
        if f.is_file():
            try:
                return json.loads(f.read_text())
            except ValueError:
                return {"rehearsal": True}
    return None


def _rehearsal_html(r: dict, own: bool) -> str:
    subs = r.get("substitutions") or []
    rows = "".join(f"<li><code>{html.escape(str(s.get('key')))}</code>: <code>{html.escape(str(s.get('was')))}</code> → "
                   f"<code>{html.escape(str(s.get('now')))}</code> — {html.escape(str(s.get('reason', '')))}</li>"
                   for s in subs)
    link = "<a href='rehearsal.json'>rehearsal.json</a>" if own else "the ablation root's rehearsal.json"
    return (f"<div class='limits' id='rehearsal'><h2>A rehearsal, not an experiment</h2><p>This run rehearses the recipe "
            f"<code>{html.escape(str(r.get('config', '?')))}</code> at toy scale on CPU with a tiny randomly "
            f"initialised model: it shows that every phase runs through the same code; no number on this page says "
            f"anything about the real run (whose folder, <code>{html.escape(str(r.get('real_run_dir', '?')))}</code>, "
            f"it does not touch). What it replaced ({len(subs)}; toy sizes and notes in {link}):</p>"
            f"<ul>{rows}</ul></div>")


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
           f"on identical items and prompts. Differences are <i>arm − {html.escape(plan['reference'])}</i>, paired by "
           f"item; the runs of two arms are independent (seed s of one arm trains on other data in another order), "
           f"so the {int(100 * plan['ci'])}% intervals are t intervals whose variance adds each arm's run-to-run "
           f"variance (from its per-run means) and the item x arm variance (from the seed-averaged per-item "
           f"differences), at Satterthwaite degrees of freedom (df). MDE: the true difference such an interval "
           f"excludes from zero with 80% probability. The per-seed differences are shown beside each.</p>"]
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
                                                             "ci_high", "df", "mde", "excludes_zero", "per_seed")
                                                  if c in t.columns]))
        if summary.get("run_sd"):
            out.append("<p>Run-to-run standard deviation of one run's mean, all arms pooled (what sizes the seeds):</p>")
            out.append(_table(summary["run_sd"], ["benchmark", "metric", "run_sd", "df", "n_items"]))
        plan_rows = summary.get("seeds_plan") or []
        if plan_rows:
            out.append("<p>What more seeds would buy — the MDE of basic+translated − token-matched (gold-solution "
                       "NLL) with this many runs per arm, at this run's variance and items: "
                       + "; ".join(f"{html.escape(str(r['benchmark']))} {r['seeds']} seeds {r['mde']:.4f}"
                                   for r in plan_rows) + ".</p>")
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
