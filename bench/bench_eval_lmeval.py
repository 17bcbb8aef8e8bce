"""Cross-check phase 4's lm-eval-compatible protocol against lm-evaluation-harness's OWN gsm8k-cot task.

One real OpenAI-compatible server (llama.cpp via ``python -m llama_cpp.server``) serves the Qwen2.5-Coder-0.5B-
Instruct Q4_K_M GGUF once; both harnesses send it plain-text completion requests, greedy:
  * lm-eval 0.4.13: model ``local-completions`` (``tokenizer_backend=None, tokenized_requests=False``: the prompt
    goes as text, as the kit sends it), task = lm-eval's installed ``gsm8k-cot.yaml`` included unchanged except the
    data location (the local GSM8K test file rewritten to the Hub layout "solution #### N"; the Hub is offline);
  * mathcode: ``OpenAIGenerator`` + ``harness.evaluate(protocol="lm_eval_gsm8k_cot")`` (exemplars read from the
    same lm-eval YAML; prompt, stop strings and strict/flexible scoring re-implemented in the kit).
Interleaved in chunks (alternating which harness goes first), the same items, lm-eval's ``max_gen_toks`` (256)
and ``until``. Prints a markdown table: accuracy of each, per-item agreement (strict-match and flexible-extract),
identical completions, items/s of each (wall time of each harness's calls, server already warm).

    .venv/bin/python bench/bench_eval_lmeval.py [N=100] [CHUNK=20]
    (needs pip install -e '.[bench]' for lm-eval 0.4.13 and llama-cpp-python[server])
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
CHUNK = int(sys.argv[2]) if len(sys.argv) > 2 else 20
GGUF = os.environ.get("MATHCODE_BENCH_GGUF", "/work/cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
MAX_GEN = 256            # lm-eval's default max_gen_toks (gsm8k-cot sets none)
ALIAS = "qwen2.5-coder-0.5b-instruct-q4_k_m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# llama.cpp's CPU "extra buffer types" (weight repacking, AMX tiles) are switched off: on this VM the CPU
# advertises AMX but the hypervisor does not enable it, and the first decode died with "Illegal instruction"
# (llama-cpp-python 0.3.36 compiled natively). The server is otherwise llama_cpp.server's own main().
_LAUNCH = ("import sys, llama_cpp, llama_cpp.llama as L\n"
           "_d = llama_cpp.llama_model_default_params\n"
           "def _p():\n    x = _d(); x.use_extra_bufts = False; return x\n"
           "L.llama_cpp.llama_model_default_params = _p\n"
           "from llama_cpp.server.__main__ import main\nsys.argv[0] = 'llama_cpp.server'\nmain()\n")


def start_server(port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", _LAUNCH, "--model", GGUF, "--model_alias", ALIAS, "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "4096", "--n_threads", os.environ.get("BENCH_THREADS", "1"),
           "--n_threads_batch", os.environ.get("BENCH_THREADS", "1")]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    import requests
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"llama.cpp server exited (rc {proc.returncode}); see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(1)
    proc.kill()
    sys.exit(f"llama.cpp server did not come up in 600 s; see {log}")


def task_yaml(tmp: Path, bdir: Path) -> tuple[Path, str]:
    """lm-eval's own gsm8k-cot task, included unchanged; only the dataset location points at a local file."""
    import lm_eval
    src = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k-cot.yaml"
    data = tmp / "gsm8k_test_hub_layout.jsonl"
    with open(data, "w") as fh:
        for line in open(bdir / "gsm8k_test.jsonl"):
            r = json.loads(line)
            fh.write(json.dumps({"question": r["question"], "answer": f"{r['cot']}\n#### {r['answer']}"}) + "\n")
    d = tmp / "tasks"
    d.mkdir()
    name = "gsm8k_cot_localdata"
    (d / f"{name}.yaml").write_text(f"include: {src}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
                                    f"dataset_kwargs:\n  data_files:\n    test: {data}\n")
    return d, name


def main():
    from mathcode import paths
    from mathcode.evaluate import benchmarks as B, harness, protocols
    from mathcode.generation import GenConfig, make_generator
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    bdir = paths.benchmarks_dir()
    if bdir is None:
        sys.exit("../shared/data/benchmarks is absent: this cross-check needs the real GSM8K test file")
    if not Path(GGUF).exists():
        sys.exit(f"{GGUF} is missing (set MATHCODE_BENCH_GGUF)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_lmeval_"))
    port = free_port()
    server = start_server(port, tmp / "server.log")
    try:
        base = f"http://127.0.0.1:{port}/v1"
        task_dir, task = task_yaml(tmp, bdir)
        tm = TaskManager(include_path=str(task_dir))
        lm = LocalCompletionsAPI(base_url=f"{base}/completions", model=ALIAS, tokenizer_backend=None,
                                 tokenized_requests=False, num_concurrent=1, max_retries=3, max_gen_toks=MAX_GEN,
                                 timeout=600)
        gen = make_generator("openai", model=ALIAS, base_url=base, concurrency=1, timeout=600)
        items = B.load_benchmark("gsm8k", limit=N)
        proto = protocols.get_protocol("lm_eval_gsm8k_cot")
        model = harness.EvalModel("qwen-0.5b", f"{ALIAS} via llama.cpp server")
        gen.complete([proto.build(items[0], "gsm8k")], GenConfig(max_new_tokens=1))   # warm-up: shared prefix cached
        t_lm = t_kit = 0.0
        lm_ok, lm_resp, kit_rows = {}, {}, []
        for c, start in enumerate(range(0, N, CHUNK)):
            idx = list(range(start, min(N, start + CHUNK)))
            order = ("lm", "kit") if c % 2 == 0 else ("kit", "lm")
            for who in order:
                t0 = time.perf_counter()
                if who == "lm":
                    res = lm_eval.simple_evaluate(model=lm, tasks=[task], samples={task: idx}, log_samples=True,
                                                  task_manager=tm, bootstrap_iters=0, gen_kwargs=None)
                    for s in res["samples"][task]:
                        lm_ok.setdefault(s["doc_id"], {})[s["filter"]] = bool(s["exact_match"])
                        lm_resp[s["doc_id"]] = s["resps"][0][0]
                    t_lm += time.perf_counter() - t0
                else:
                    kit_rows += harness.evaluate(gen, [items[i] for i in idx], model=model,
                                                 out_path=tmp / "kit_items.jsonl", protocol=proto,
                                                 max_new_tokens=MAX_GEN, batch_size=1, progress=False)
                    t_kit += time.perf_counter() - t0
            print(f"chunk {c}: items {idx[0]}..{idx[-1]} done; lm-eval {t_lm:.0f} s, kit {t_kit:.0f} s", flush=True)
            (tmp / "progress.json").write_text(json.dumps({"lm_ok": lm_ok, "lm_resp": lm_resp, "t_lm": t_lm,
                                                           "t_kit": t_kit, "kit_rows": kit_rows}))
            report(items, kit_rows, lm_ok, lm_resp, t_lm, t_kit, tmp)
    finally:
        server.terminate()
        server.wait(30)


def report(items, kit_rows, lm_ok, lm_resp, t_lm, t_kit, tmp):
    n = len(kit_rows)
    strict = [lm_ok[i]["strict-match"] for i in range(n)]
    flex = [lm_ok[i]["flexible-extract"] for i in range(n)]
    k_strict = [r["correct"] for r in kit_rows]
    k_flex = [r["flexible_extract"] for r in kit_rows]
    k_robust = [r["correct_kit"] for r in kit_rows]
    same = [lm_resp[i] == kit_rows[i]["completion"] for i in range(n)]
    print(f"\nGSM8K test items 0..{n - 1}, Qwen2.5-Coder-0.5B-Instruct Q4_K_M via llama.cpp server (1 thread), "
          f"lm-eval gsm8k-cot 8-shot, greedy, max_gen_toks={MAX_GEN}\n")
    print("| metric | lm-eval 0.4.13 | mathcode (lm_eval_gsm8k_cot) | per-item agreement |")
    print("|---|---|---|---|")
    print(f"| strict-match | {sum(strict)}/{n} | {sum(k_strict)}/{n} | "
          f"{sum(a == b for a, b in zip(strict, k_strict))}/{n} |")
    print(f"| flexible-extract | {sum(flex)}/{n} | {sum(k_flex)}/{n} | {sum(a == b for a, b in zip(flex, k_flex))}/{n} |")
    print(f"| kit's own extraction (math-verify) | - | {sum(k_robust)}/{n} | vs strict {sum(a == b for a, b in zip(strict, k_robust))}/{n} |")
    print(f"| identical completions | - | - | {sum(same)}/{n} |")
    print(f"| wall s (generation + scoring) | {t_lm:.1f} | {t_kit:.1f} | |")
    print(f"| items/s | {n / t_lm:.4f} | {n / t_kit:.4f} | kit/lm-eval = {t_lm / t_kit:.2f} |")
    for i in range(n):
        if strict[i] != k_strict[i] or flex[i] != k_flex[i] or not same[i] or k_robust[i] != strict[i]:
            r = kit_rows[i]
            print(f"- item {i}: lm strict={strict[i]} flex={flex[i]} | kit strict={k_strict[i]} flex={k_flex[i]} "
                  f"robust={k_robust[i]} ({r['extracted_kit']!r}, gold {r['gold']}); same text={same[i]}; "
                  f"kit tail {r['completion'][-100:]!r}" + ("" if same[i] else f"; lm tail {lm_resp[i][-100:]!r}"))
    (tmp / "lm_resps.json").write_text(json.dumps(lm_resp))
    print(f"\nraw outputs: {tmp}")


if __name__ == "__main__":
    main()
