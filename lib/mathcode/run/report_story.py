"""What ``report.html`` says, derived from the run's own files: every sentence below is computed from numbers the
phases recorded (manifests, metrics, tables, blocks), so a run that did something else reads differently.

``facts(run_dir)``        one dict of the numbers the story needs (missing phases give missing keys, never errors);
``key_numbers(f)``        the run in sentences with units;
``limitations(f)``        what this run can and cannot show (model size, tokens, translated share, items, proxies,
                          intervals that include zero);
``worked_examples(run)``  one verified and one rejected translation block, in full.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from mathcode.manifest import read as read_manifest


# --- reading ---------------------------------------------------------------------------------------------------
def _csv(path: Path) -> list[dict]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue                      # a torn last line of an interrupted run
    return out


def _num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None              # NaN -> None


def model_parameters(spec: str | None) -> int | None:
    """Parameters of a model spec from its saved files (safetensors headers), without loading it; None when the
    model is not available locally as a folder (a Hub id not cached, a server name)."""
    if not spec:
        return None
    try:
        from mathcode import models
        if spec.startswith("embedded:"):
            folder = models.paths.cache_dir(None) / "models" / spec.split(":", 1)[1]
        else:
            folder = models.paths.resolve_path(spec)
        return models.count_parameters(folder) if folder is not None and folder.is_dir() else None
    except Exception:
        return None


def facts(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    f: dict = {"run": run_dir.name}
    recipe = json.loads((run_dir / "recipe.json").read_text()) if (run_dir / "recipe.json").exists() else {}
    f["recipe"] = recipe
    f["model"] = recipe.get("model")
    for key in ("01_data", "02_translation", "03_pretraining", "04_evaluation"):
        m = read_manifest(run_dir / key) or {}
        f[key] = {"status": m.get("status", "missing"), "metrics": m.get("metrics") or {},
                  "parameters": m.get("parameters") or {}, "seconds": m.get("seconds")}
        if not f["model"] and m.get("parameters", {}).get("model"):
            f["model"] = m["parameters"]["model"]
    f["model_params"] = model_parameters(f["model"])
    d1 = run_dir / "01_data"
    f["mixture"] = _csv(d1 / "tables" / "mixture.csv")
    f["classifier_metrics"] = _csv(d1 / "tables" / "classifier_metrics.csv")
    f["decontam_hits"] = _csv(d1 / "tables" / "decontamination_hits.csv")
    d4 = run_dir / "04_evaluation"
    f["results"] = _csv(d4 / "tables" / "results.csv")
    f["differences"] = _csv(d4 / "tables" / "differences.csv")
    f["nll"] = _csv(d4 / "tables" / "nll.csv")
    f["ablation"] = _csv(run_dir / "ablation" / "comparison.csv")
    f["nll_items"] = _jsonl(d4 / "nll.jsonl")
    return f


# --- words -----------------------------------------------------------------------------------------------------
def plural(n, word: str, words: str | None = None) -> str:
    n = int(n)
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def size_words(n: int | None) -> str:
    if not n:
        return "unknown size"
    if n >= 1e9:
        return f"{n / 1e9:.1f} billion parameters"
    return f"{n / 1e6:.0f} million parameters"


def pct(x, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def _short(spec: str | None) -> str:
    return (spec or "?").split(":", 1)[-1]


def translated_share(f: dict) -> tuple[int, int] | None:
    """(translated tokens, all tokens) phase 3 trained on, from its ``train_tokens_by_part``."""
    parts = f["03_pretraining"]["metrics"].get("train_tokens_by_part") or {}
    if not isinstance(parts, dict) or not parts:
        return None
    total = sum(int(v) for v in parts.values())
    trans = sum(int(v) for k, v in parts.items() if "translat" in str(k))
    return trans, total


def training_tokens(f: dict) -> tuple[int, int] | None:
    """(tokens processed by the optimizer steps, tokens in the packed training set) of phase 3. Processed = steps x
    sequences per step (per-device batch x gradient accumulation, one process) x block size; parameters the recipe
    left at the notebook's default are read from the notebook."""
    m3, p3 = f["03_pretraining"]["metrics"], dict(f["03_pretraining"]["parameters"])
    if "steps" not in m3 or "train_tokens" not in m3:
        return None
    try:
        from mathcode.run import params
        d = params.defaults("pretraining")
    except Exception:
        d = {}
    bs = p3.get("per_device_batch_size") or d.get("per_device_batch_size") or 1
    ga = p3.get("grad_accum") or d.get("grad_accum") or 1
    block = int(m3.get("block_size") or p3.get("block_size") or d.get("block_size") or 0)
    seen = int(m3["steps"]) * int(bs) * int(ga) * block
    return min(seen, 10 ** 18), int(m3["train_tokens"])


def accuracy_rows(f: dict) -> list[dict]:
    rows = []
    for r in f["results"]:
        n, k = _num(r.get("n")), _num(r.get("correct"))
        if n is None or k is None:
            continue
        rows.append({"model": r["model"], "benchmark": r["benchmark"], "n": int(n), "correct": int(k),
                     "ci_low": _num(r.get("ci_low")), "ci_high": _num(r.get("ci_high"))})
    return rows


def skipped_benchmarks(f: dict) -> list[str]:
    if f["04_evaluation"]["status"] != "complete" or not f["results"]:
        return []
    asked = f["04_evaluation"]["parameters"].get("benchmarks") or []
    present = {r["benchmark"] for r in f["results"]}
    out = []
    for b in asked:
        if b in present or any(p.startswith(b) or (b == "gsm8k" and "proxy for gsm8k" in p) for p in present):
            continue
        out.append(b)
    return out


def removals_sentence(m1: dict) -> str:
    """Every removal of phase 1 by step and reason, with the file that lists it (``removed_by_step`` of the phase's
    metrics); runs recorded before that metric existed get the near-dedup count they recorded."""
    by = m1.get("removed_by_step")
    if not isinstance(by, dict):
        return f" Near-deduplication removed {plural(m1.get('near_duplicates_removed', 0), 'document')}"
    from mathcode.data.records import REMOVAL_WORDS, removal_file
    parts = []
    for step, reasons in by.items():
        if step == "decontaminate" or not reasons:
            continue                                  # the decontamination clause below says it with its n-gram
        n = sum(int(v) for v in reasons.values())
        why = ", ".join(f"{v} {str(k).replace('_', ' ')}" for k, v in reasons.items()) if len(reasons) > 1 or \
            next(iter(reasons)) != step else ""
        parts.append(f"{REMOVAL_WORDS.get(step, step)} removed {plural(n, 'document')}"
                     f"{' (' + why + ')' if why else ''}, listed in {removal_file(step)}")
    if not parts:
        return " No filter, deduplication or budget removed a document"
    return " " + "; ".join(parts)[0].upper() + "; ".join(parts)[1:]


def heldout_tokens(f: dict) -> int | None:
    """Tokens the held-out loss of phase 3 is measured on: the evaluated held-out blocks x block size (recorded as
    ``heldout_eval_tokens``; for older runs recomputed from the block counts and ``max_heldout_blocks``)."""
    m3, p3 = f["03_pretraining"]["metrics"], f["03_pretraining"]["parameters"]
    if m3.get("heldout_eval_tokens"):
        return int(m3["heldout_eval_tokens"])
    if not m3.get("heldout_blocks") or not m3.get("block_size"):
        return None
    cap = p3.get("max_heldout_blocks")
    if cap is None:
        try:
            from mathcode.run import params
            cap = params.defaults("pretraining").get("max_heldout_blocks")
        except Exception:
            cap = None
    blocks = int(m3["heldout_blocks"]) if not cap else min(int(m3["heldout_blocks"]), int(cap))
    return blocks * int(m3["block_size"])


def nll_change(f: dict) -> dict | None:
    """The gold-solution NLL probe of phase 4 for the first two models (base, then the trained one): token-weighted
    means in nats per token, solutions and tokens scored, and on how many solutions the second model is lower."""
    rows = [r for r in f.get("nll") or [] if _num(r.get("nll_per_token")) is not None]
    models = list(dict.fromkeys(r["model"] for r in rows))
    if len(models) < 2:
        return None
    base, other = models[0], models[1]

    def pooled(m):
        rs = [r for r in rows if r["model"] == m]
        tok = sum(int(_num(r.get("tokens")) or 0) for r in rs)
        nll = (sum(_num(r["nll_per_token"]) * int(_num(r.get("tokens")) or 0) for r in rs) / tok) if tok else \
            sum(_num(r["nll_per_token"]) for r in rs) / len(rs)
        return nll, sum(int(_num(r.get("n")) or 0) for r in rs), tok

    (b, n, tok), (a, _, _) = pooled(base), pooled(other)
    per = {}
    for r in f.get("nll_items") or []:
        if r.get("model") in (base, other) and _num(r.get("nll_mean")) is not None:
            per.setdefault((r.get("benchmark"), str(r.get("item_id"))), {})[r["model"]] = _num(r["nll_mean"])
    paired = [v for v in per.values() if base in v and other in v]
    return {"base": base, "model": other, "before": b, "after": a, "solutions": n, "tokens": tok,
            "benchmarks": sorted({r["benchmark"] for r in rows}),
            "lower_on": sum(v[other] < v[base] for v in paired) if paired else None, "paired": len(paired)}


def key_numbers(f: dict) -> list[str]:
    """One sentence per phase that ran, each number with its unit."""
    out = []
    m1 = f["01_data"]["metrics"]
    if f["01_data"]["status"] == "complete" and "docs_final" in m1:
        srcs = len(f["mixture"]) or None
        s = (f"Phase 1 read {plural(m1['docs_loaded'], 'document')} and kept {plural(m1['docs_final'], 'document')}"
             f"{' from ' + plural(srcs, 'source') if srcs else ''}: {int(m1['tokens_final']):,} tokens, counted with "
             f"the trained model's tokenizer.")
        s += removals_sentence(m1)
        note = str(m1.get("decontamination", ""))
        if note.startswith("NOT"):
            s += "; the corpus was NOT decontaminated (no benchmark test sets were available)."
        else:
            ngram = f["01_data"]["parameters"].get("decontam_ngram", 13)
            sets = re.sub(r"(\w+) \((\d+)\)", r"\1 \2", note.replace("decontaminated against ", ""))
            by = {}
            for r in f["decontam_hits"]:
                by[r["benchmark"]] = by.get(r["benchmark"], 0) + int(_num(r.get("docs")) or 0)
            s += (f"; decontamination removed {plural(m1.get('decontaminated', 0), 'document')} that shared a "
                  f"{ngram}-word sequence with a benchmark test item"
                  + (" (" + ", ".join(f"{v} with {k}" for k, v in by.items()) + ")" if by else "")
                  + f" — test items checked per set: {sets}.")
        auc = _num(m1.get("classifier_auc_round2"))
        if auc is not None:
            held = next((r for r in f["classifier_metrics"] if "2" in str(r.get("round", ""))), None)
            n_held = held.get("n") or held.get("held_out") if held else None
            s += (f" The math classifier (fastText) told held-out math from non-math text apart with an AUC of "
                  f"{auc:.2f}{' on ' + plural(_num(n_held), 'document') if _num(n_held) else ''} (the chance that "
                  f"a math document scores above a non-math one"
                  f"{'; 1.00 means always, on a small and easy held-out set' if auc >= 0.995 else ''}).")
        out.append(s)
    m2 = f["02_translation"]["metrics"]
    if f["02_translation"]["status"] == "complete" and "blocks" in m2:
        n, b, v = int(m2.get("passages", 0)), int(m2.get("blocks", 0)), int(m2.get("verified_blocks", 0))
        out.append(f"Phase 2 asked {_short(m2.get('model'))} to translate {plural(n, 'passage')} into Python; it "
                   f"wrote {plural(b, 'code block')}, and {v} of them ({pct(v / b, 0) if b else '0%'}) passed every "
                   f"check (ran in the sandbox, printed the stated result, the result appears in the passage, the "
                   f"value is computed and not typed in). The translator generated "
                   f"{float(m2.get('generation_tokens_per_s', 0)):.1f} tokens per second where it ran.")
    m3 = f["03_pretraining"]["metrics"]
    if f["03_pretraining"]["status"] == "complete" and "steps" in m3:
        tt = training_tokens(f)
        s = (f"Phase 3 trained LoRA adapters (small weight matrices added to every layer; the base model stays frozen "
             f"in 4 bits) on {_short(f['model'])} for {plural(m3['steps'], 'optimizer step')}")
        if tt:
            s += (f": {tt[0]:,} tokens processed (sequences of {m3.get('block_size', '?')} tokens), "
                  f"{pct(min(1.0, tt[0] / tt[1]), 0) if tt[1] else '?'} of the {tt[1]:,}-token training set")
            ts = translated_share(f)
            if ts and ts[1] == tt[1]:
                s += f", of which {ts[0]:,} tokens ({pct(ts[0] / ts[1], 2)}) are translated code"
            s += "."
        else:
            s += "."
        tp = m3.get("trainable_params")
        if tp and f["model_params"]:
            s += (f" The adapters hold {int(tp) / 1e6:.1f} million trainable parameters, "
                  f"{pct(int(tp) / (f['model_params'] + int(tp)), 1)} of the adapted model's "
                  f"{(f['model_params'] + int(tp)) / 1e6:.0f} million.")
        a, b2 = _num(m3.get("train_loss_first")), _num(m3.get("train_loss_last"))
        if a is not None and b2 is not None:
            s += (f" The training loss (nats per token) went from {a:.2f} to {b2:.2f} "
                  f"({'fell' if b2 < a else 'rose' if b2 > a else 'did not change'}; with "
                  f"{plural(m3['steps'], 'step')} one batch's loss is noisy).")
        hb, ha = _num(m3.get("heldout_loss_before")), _num(m3.get("heldout_loss_after"))
        if hb is not None and ha is not None:
            ht = heldout_tokens(f)
            s += (f" On {f'{ht:,} ' if ht else ''}held-out tokens (documents never trained on) the loss (nats per "
                  f"token) went from {hb:.3f} to {ha:.3f} "
                  f"({'lower is better: it improved' if ha < hb else 'it did not improve'}).")
        out.append(s)
    acc = accuracy_rows(f)
    if f["04_evaluation"]["status"] == "complete" and acc:
        parts = []
        for bench in dict.fromkeys(r["benchmark"] for r in acc):
            rs = [r for r in acc if r["benchmark"] == bench]
            parts.append(f"{bench}: " + ", ".join(f"{r['model']} {r['correct']}/{r['n']}" for r in rs))
        out.append("Phase 4 scored the same items and prompts for every model (correct answers / items): "
                   + "; ".join(parts) + ".")
    nc = nll_change(f) if f["04_evaluation"]["status"] == "complete" else None
    if nc:
        s = (f"On the reference solutions of {plural(nc['solutions'], 'item')} ({', '.join(nc['benchmarks'])}; "
             f"{nc['tokens']:,} solution tokens), the mean negative log-likelihood went from {nc['before']:.2f} "
             f"({nc['base']}) to {nc['after']:.2f} nats per token ({nc['model']}): "
             + ("lower: the trained model finds these worked solutions more likely" if nc["after"] < nc["before"] else
                "not lower: the trained model finds these worked solutions no more likely"))
        if nc["lower_on"] is not None:
            s += f"; lower on {nc['lower_on']} of {plural(nc['paired'], 'solution')}"
        out.append(s + ".")
    return out


def limitations(f: dict) -> list[str]:
    """What this run can and cannot show, from its own numbers."""
    out = []
    mp = f["model_params"]
    out.append(f"The trained model is {_short(f['model'])} ({size_words(mp)}); MathCoder2 trained 7–8 billion "
               f"parameter models. A model this small answers few benchmark items at all.")
    tt = training_tokens(f)
    if tt:
        out.append(f"Phase 3 processed {tt[0]:,} tokens in {plural(f['03_pretraining']['metrics'].get('steps', 0), 'step')};"
                   f" MathCoder2 continued pretraining on 19.2 billion tokens.")
    ts = translated_share(f)
    if ts:
        trans, total = ts
        share = trans / total if total else 0.0
        s = (f"Translated code was {trans:,} of the {total:,} tokens of packed training text ({pct(share, 2)}); "
             f"in MathCode-Pile it is 14.1%.")
        if tt and share:
            expect = share * tt[0]
            s += (f" Of the {tt[0]:,} tokens processed, about {expect:,.0f} would be translated code on average"
                  + (" — possibly not a single translated block was seen in training." if expect < 200 else "."))
        out.append(s)
    acc = accuracy_rows(f)
    if acc:
        per = {}
        for r in acc:
            per.setdefault(r["benchmark"], r["n"])
        out.append("Items per benchmark: " + ", ".join(f"{b} {n}" for b, n in per.items())
                   + ". With so few items one answer moves accuracy by "
                   + ", ".join(f"{pct(1 / n, 0)} ({b})" for b, n in per.items() if n) + ".")
    proxies = sorted({r["benchmark"] for r in acc if "proxy" in r["benchmark"]})
    if proxies:
        out.append(f"Not the real benchmark: {', '.join(proxies)} — offline problems generated from templates, "
                   f"standing in because the real test set was not available.")
    skipped = skipped_benchmarks(f)
    if skipped:
        out.append(f"Asked for but not evaluated (test set not available offline): {', '.join(skipped)}.")
    zero, same, excluded = [], [], []
    for d in f["differences"]:
        lo, hi = _num(d.get("ci_low")), _num(d.get("ci_high"))
        if lo is None or hi is None:
            continue
        if lo == hi == 0:            # every item scored alike: nothing to resample
            same.append(d["benchmark"])
        elif lo <= 0 <= hi:
            zero.append(f"{d['benchmark']} ({d['model']} − {d['vs']}: {float(d['diff']):+.2f}, 95% interval "
                        f"{lo:+.2f} to {hi:+.2f})")
        else:
            excluded.append(f"{d['benchmark']} ({d['model']} − {d['vs']}: {float(d['diff']):+.2f}, 95% interval "
                            f"{lo:+.2f} to {hi:+.2f})")
    if same:
        out.append(f"Identical scores for both models, item by item (a difference of 0, interval 0 to 0): "
                   f"{', '.join(same)}.")
    if zero:
        out.append("These differences have intervals that include zero, so they show no effect either way: "
                   + "; ".join(zero) + ".")
    if excluded:
        every = not zero and not same
        out.append(("Every accuracy difference has an interval that excludes zero" if every else
                    "These accuracy differences have intervals that exclude zero")
                   + ": " + "; ".join(excluded) + ". The interval is over the items of one training run only, not "
                   "training noise; with this few items, read the flipped items before believing it.")
    out += ablation_limitations(f)
    m2 = f["02_translation"]["metrics"]
    if "blocks" in m2:
        out.append(f"Translation: {plural(m2.get('passages', 0), 'passage')} translated by "
                   f"{_short(m2.get('model'))} ({size_words(model_parameters(m2.get('model')))})"
                   if model_parameters(m2.get("model")) else
                   f"Translation: {plural(m2.get('passages', 0), 'passage')} translated by {_short(m2.get('model'))}")
        out[-1] += (f", {m2.get('verified_blocks', 0)} verified blocks in all; MathCoder2 translated millions of "
                    f"passages with a much larger instruct model.")
    m1 = f["01_data"]["metrics"]
    if str(m1.get("decontamination", "")).startswith("NOT"):
        out.append("The corpus was not decontaminated against the benchmarks (no test sets were available).")
    return out


def ablation_limitations(f: dict) -> list[str]:
    """What the ablation's gold-solution NLL contrasts can and cannot show, from ``ablation/comparison.csv``: how
    many seeds the run-to-run part rests on, which intervals include zero and the effect each could have detected
    (MDE); nothing is called an effect unless its interval excludes zero."""
    rows = [r for r in f.get("ablation") or [] if r.get("metric") == "nll" and _num(r.get("ci_low")) is not None]
    if not rows:
        return []
    out = []
    seeds = min(int(_num(r.get("n_seeds")) or 0) for r in rows)
    out.append(f"The ablation trained {plural(seeds, 'seed')} per arm; the intervals allow for run-to-run variance "
               f"estimated from {plural(max(0, seeds - 1), 'degree')} of freedom per arm"
               + (" (one seed: training noise is not in the intervals at all)." if seeds < 2 else "."))
    open_, shown = [], []
    for r in rows:
        lo, hi, d, m = (_num(r.get(k)) for k in ("ci_low", "ci_high", "diff", "mde"))
        what = (f"{r['benchmark']} {r['arm']} − {r['reference']} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
                + (f", MDE {m:.4f}" if m is not None else ""))
        (open_ if lo <= 0 <= hi else shown).append(what)
    if open_:
        out.append("Gold-solution NLL differences whose interval includes zero — no effect can be claimed, and an "
                   "effect smaller than the MDE would likely have gone unseen: " + "; ".join(open_) + ".")
    if shown:
        out.append("Gold-solution NLL differences whose interval excludes zero: " + "; ".join(shown) + ".")
    return out


def method_steps(f: dict) -> list[tuple[str, str]]:
    """(title, what this run did) for the method figure, one per phase."""
    m1, m2, m3 = f["01_data"]["metrics"], f["02_translation"]["metrics"], f["03_pretraining"]["metrics"]
    acc = accuracy_rows(f)
    steps = [("1 · Math text", f"{int(m1['docs_final']):,} documents\n{int(m1['tokens_final']):,} tokens"
              if "docs_final" in m1 else "not run"),
             ("2 · Translate", f"{m2.get('verified_blocks', 0)} of {m2.get('blocks', 0)} blocks\nverified"
              if "blocks" in m2 else "not run"),
             ("3 · QLoRA training", f"{(training_tokens(f) or (0, 0))[0]:,} tokens\nin {m3.get('steps', 0)} steps"
              if "steps" in m3 else "not run"),
             ("4 · Evaluate", f"{plural(len({r['benchmark'] for r in acc}), 'benchmark')}\n"
                              f"{sum(r['n'] for r in acc if r['model'] == acc[0]['model'])} items per model"
              if acc else "not run")]
    return steps


# --- the worked example ----------------------------------------------------------------------------------------
def _sentence_with(text: str, result: str) -> str:
    try:
        from mathcode.translate.figures import _sentence_with as sw
        return sw(text, result)
    except Exception:
        sents = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text or "") if s.strip()]
        return sents[-1] if sents else ""


def worked_examples(run_dir: Path) -> dict:
    """{"verified": block, "rejected": block}, each with its passage; a rejected block whose code ran is preferred
    (it shows what the checks catch), then any rejected block with code."""
    d = Path(run_dir) / "02_translation"
    every = _jsonl(d / "blocks.jsonl")
    blocks = [b for b in every if not b.get("reply_level")]
    passages = {p["id"]: p for p in _jsonl(d / "passages.jsonl")}
    replies = {r.get("passage_id"): r.get("text", "") for r in _jsonl(d / "replies.jsonl")}
    out = {}
    # the most instructive verified block: its own stated result (not re-read), the most lines of code
    ver = sorted((b for b in blocks if b.get("outcome") == "verified"),
                 key=lambda b: (bool(b.get("result_reread")), -len(str(b.get("code", "")).strip().splitlines())))
    rej = [b for b in blocks if b.get("outcome") != "verified" and b.get("code")]
    rej.sort(key=lambda b: (b.get("exit_status") != "ok", b.get("outcome") in ("unparsable", "copied")))
    if not rej:                    # no rejected block with code: a reply no block could be read from, as written
        rej = [b for b in every if b.get("outcome") != "verified"]
    for kind, pool in (("verified", ver), ("rejected", rej)):
        if pool:
            b = dict(pool[0])
            b["reply_text"] = replies.get(b["passage_id"], "")
            p = passages.get(b["passage_id"], {})
            b["passage_text"] = p.get("text", "")
            b["passage_context"] = p.get("context", "")
            b["passage_sentence"] = _sentence_with(p.get("text", ""), str(b.get("result", "")))
            out[kind] = b
    return out
