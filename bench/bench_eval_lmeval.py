"""Cross-check phase 4's harness against lm-evaluation-harness on the first N GSM8K test items.

Same model object, same 4 exemplars, same prompt template ("Question: ..\\nAnswer: <target>", blank line
between shots), same stop strings, greedy, same max new tokens, same batch size. lm-eval reads the local
GSM8K file through a task YAML written here (``dataset_path: json`` + ``data_files``) and takes its
few-shot examples, in order, from a file holding our exemplars. Prints a markdown table: per-item
agreement of our `correct` with lm-eval's strict-match ("The answer is N") and flexible-extract (last
number) exact_match, and items/s of each (generation + scoring, model already loaded).

    .venv/bin/python bench/bench_eval_lmeval.py [N]        # needs: pip install lm-eval (0.4.13 used)
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
MAX_NEW = 96
BATCH = 8


def main():
    import torch
    from mathcode import paths
    from mathcode.evaluate import benchmarks as B, fewshot as F, harness
    from mathcode.generation import make_generator

    bdir = paths.benchmarks_dir()
    if bdir is None:
        sys.exit("../shared/data/benchmarks is absent: this cross-check needs the real GSM8K test file")
    torch.manual_seed(0)
    spec = "embedded:smollm2-135m-instruct"
    gen = make_generator("hf", model=spec, device="cpu")
    items = B.load_benchmark("gsm8k", limit=N)

    # --- ours
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    t0 = time.perf_counter()
    ours = harness.evaluate(gen, items, model=harness.EvalModel("base", spec), out_path=tmp / "items.jsonl",
                            n_shots=4, max_new_tokens=MAX_NEW, batch_size=BATCH)
    t_ours = time.perf_counter() - t0

    # --- lm-eval, same model object
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    shots = tmp / "fewshot.jsonl"
    shots.write_text("".join(json.dumps({"question": it.question, "answer": sol}) + "\n"
                             for it, sol in F.exemplar_items("gsm8k")))
    task_dir = tmp / "tasks"
    task_dir.mkdir()
    (task_dir / "mathcode_gsm8k_local.yaml").write_text(f"""task: mathcode_gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {bdir / 'gsm8k_test.jsonl'}
    train: {shots}
output_type: generate_until
test_split: test
fewshot_split: train
fewshot_config:
  sampler: first_n
num_fewshot: 4
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
target_delimiter: " "
fewshot_delimiter: "\\n\\n"
generation_kwargs:
  until: {json.dumps(F.STOP)}
  do_sample: false
  max_gen_toks: {MAX_NEW}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore: [",", "\\\\$", "\\\\.$"]
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "The answer is \\\\$?(\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
""")
    lm = HFLM(pretrained=gen.model, tokenizer=gen.tokenizer, batch_size=BATCH, max_length=2048)
    t0 = time.perf_counter()
    res = lm_eval.simple_evaluate(model=lm, tasks=["mathcode_gsm8k_local"], limit=N, log_samples=True,
                                  task_manager=TaskManager(include_path=str(task_dir)), num_fewshot=4,
                                  bootstrap_iters=0)
    t_lm = time.perf_counter() - t0
    samples = res["samples"]["mathcode_gsm8k_local"]
    lm_ok = {}
    lm_resp = {}
    for s in samples:
        lm_ok.setdefault(s["doc_id"], {})[s.get("filter", "")] = bool(s["exact_match"])
        lm_resp[s["doc_id"]] = s["resps"][0][0] if s.get("resps") else ""
    strict = [lm_ok[i]["strict-match"] for i in range(N)]
    flex = [lm_ok[i]["flexible-extract"] for i in range(N)]
    mine = [r["correct"] for r in ours]
    same_text = sum(lm_resp[i].split("Question:")[0].strip() == ours[i]["completion"].strip() for i in range(N))
    print(f"\nGSM8K first {N} test items, SmolLM2-135M-Instruct (embedded), CPU, 4-shot, greedy, "
          f"max_new_tokens={MAX_NEW}, batch={BATCH}\n")
    print("| harness | accuracy | per-item agreement with ours | wall s | items/s |")
    print("|---|---|---|---|---|")
    print(f"| mathcode (ours) | {sum(mine)}/{N} | - | {t_ours:.1f} | {N / t_ours:.3f} |")
    print(f"| lm-eval strict-match | {sum(strict)}/{N} | {sum(a == b for a, b in zip(mine, strict))}/{N} | "
          f"{t_lm:.1f} | {N / t_lm:.3f} |")
    print(f"| lm-eval flexible-extract | {sum(flex)}/{N} | {sum(a == b for a, b in zip(mine, flex))}/{N} | "
          f"(same run) | |")
    print(f"\nidentical completions (text before the first stop string): {same_text}/{N}")
    for i in range(N):
        if mine[i] != flex[i] or mine[i] != strict[i]:
            print(f"- item {i}: ours={mine[i]} ({ours[i]['extracted']!r}) strict={strict[i]} flex={flex[i]}; "
                  f"ours completion {ours[i]['completion'][-120:]!r}")


if __name__ == "__main__":
    main()
