"""End to end with the embedded model and a real tiny adapter: harness, NLL probe, notebook by papermill."""
import json
import subprocess
import sys

import pytest

from mathcode import paths

EMBEDDED = "embedded:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def run_with_adapter(tmp_path_factory):
    from tiny_adapter import make_tiny_adapter
    run = tmp_path_factory.mktemp("evalrun")
    make_tiny_adapter(run, EMBEDDED, steps=2, quantize="nf4")
    return run


@pytest.mark.slow
def test_harness_rows_resume_and_nll(run_with_adapter, tmp_path):
    from mathcode.evaluate import harness, nll
    from mathcode.evaluate.benchmarks import Item
    items = [Item("gsm8k", "a", "Tom has 3 apples and buys 4 more. How many apples does he have?", "7", "number",
                  solution="Tom has 3 + 4 = 7 apples."),
             Item("sat_math", "b", "What is 10 - 4?", "C", "choice", choices=["4", "5", "6", "7"])]
    ad = str(run_with_adapter / "03_pretraining" / "adapter")
    out = tmp_path / "items.jsonl"
    res = {}
    for m in (harness.EvalModel("base", EMBEDDED, quantize="nf4"), harness.EvalModel("base+adapter", EMBEDDED, ad, "nf4")):
        gen = harness.load_generator(m, device="cpu")
        assert "Linear4bit" in {type(x).__name__ for x in gen.model.modules()}          # evaluated as trained
        rows = harness.evaluate(gen, items, model=m, out_path=out, n_shots=1, max_new_tokens=12, batch_size=2,
                                progress=False)
        assert [r["item_id"] for r in rows] == ["a", "b"]
        assert all(set(r) >= {"prompt_id", "completion", "extracted", "gold", "correct"} for r in rows)
        n_before = gen.stats["requests"]
        again = harness.evaluate(gen, items, model=m, out_path=out, n_shots=1, max_new_tokens=12, batch_size=2,
                                 progress=False)
        assert gen.stats["requests"] == n_before and again == rows       # resumed, nothing regenerated
        res[m.label] = nll.solution_nll(gen.model, gen.tokenizer, items)
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and len({json.loads(l)["prompt_id"] for l in lines}) == 2   # same prompts for both
    (b,), (a,) = res["base"], res["base+adapter"]
    assert b["tokens"] == a["tokens"] > 3 and 0 < b["nll_mean"] < 10
    assert b["nll_mean"] != a["nll_mean"]                                  # the adapter changed the model


@pytest.mark.slow
def test_adapter_on_nf4_base_matches_the_merged_export(run_with_adapter, tmp_path):
    """What phase 4 evaluates (adapter on the NF4 base) and the merged export give the same logits; the adapter
    on the full-precision base (what was evaluated before) is measurably further away."""
    import torch
    from mathcode import models
    from mathcode.evaluate import steps as pipeline
    from mathcode.train.export import merged_export
    ad = run_with_adapter / "03_pretraining" / "adapter"
    assert pipeline.eval_quantize("auto", ad) == "nf4" and pipeline.eval_quantize("none", ad) is None
    tok = models.load_tokenizer(EMBEDDED)
    enc = tok(["To add 1/2 and 1/3, write both over 6: 3/6 + 2/6 = 5/6.", "def f(x):\n    return x ** 2"],
              return_tensors="pt", padding=True)

    def logp(m):
        with torch.no_grad():
            out = m(**enc).logits.float().log_softmax(-1)
        return out[enc["attention_mask"].bool()]
    as_trained = logp(models.load_model(EMBEDDED, quantize="nf4", device="cpu", adapter=ad))
    merged_dir = merged_export(EMBEDDED, ad, tmp_path / "merged", device="cpu")
    merged = logp(models.load_model(str(merged_dir), device="cpu", dtype=torch.float32))
    full = logp(models.load_model(EMBEDDED, device="cpu", dtype=torch.float32, adapter=ad))

    def kl(p, q):                                   # per position KL(p || q) in nats
        return (p.exp() * (p - q)).sum(-1)
    # measured (2 tiny training steps): NF4+adapter vs merged KL mean 0.0005, max 0.002, top-1 100%;
    # full-precision base + adapter vs merged KL mean 0.40, top-1 66% (bf16 storage of the export is the only gap)
    k_merged, k_full = kl(as_trained, merged), kl(full, merged)
    assert k_merged.mean() < 0.01 and k_merged.max() < 0.05, k_merged
    assert (as_trained.argmax(-1) == merged.argmax(-1)).float().mean() >= 0.95
    assert k_full.mean() > 10 * k_merged.mean(), (k_full.mean(), k_merged.mean())


@pytest.mark.slow
def test_adapter_for_other_base_is_refused(run_with_adapter, tmp_path):
    import shutil
    from mathcode.evaluate import harness
    from mathcode.models import ModelSpecError
    ad = tmp_path / "adapter"
    shutil.copytree(run_with_adapter / "03_pretraining" / "adapter", ad)
    (ad / "mathcode_adapter.json").write_text(json.dumps({"base_model": "HuggingFaceTB/SmolLM2-360M"}))
    with pytest.raises(ModelSpecError, match="was trained on 'HuggingFaceTB/SmolLM2-360M'"):
        harness.load_generator(harness.EvalModel("x", EMBEDDED, str(ad)), device="cpu")


@pytest.mark.slow
def test_notebook_with_custom_benchmark(run_with_adapter, tmp_path):
    custom = tmp_path / "mine.jsonl"
    custom.write_text("".join(json.dumps(r) + "\n" for r in [
        {"problem": "What is 5 + 6?", "solution": "5 + 6 = 11.", "final": "11"},
        {"problem": "Which is even?", "opts": "A) 3 B) 8 C) 5 D) 7", "final": "B"}]))
    out_nb = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(paths.project_root() / "notebooks" / "04_evaluation.ipynb"),
           str(out_nb), "-p", "run_dir", str(run_with_adapter), "-p", "limit", "1", "-y", "limits: {}",
           "-y", "benchmarks: [gsm8k]", "-p", "custom_file", str(custom), "-p", "custom_name", "mine",
           "-y", "custom_fields: {question: problem, answer: final, choices: opts, solution: solution}",
           "-y", "custom_benchmarks: [{file: %s, name: second, kind: math}]" % custom,
           "-p", "n_shots", "1", "-p", "max_new_tokens", "8", "-p", "nll_limit", "1", "-p", "device", "cpu"]
    if paths.benchmarks_dir() is None:
        cmd += ["-y", "benchmarks: [gsm_symbolic_proxy]"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = run_with_adapter / "04_evaluation"
    assert json.loads((d / "phase.json").read_text())["status"] == "complete"
    rows = [json.loads(l) for l in (d / "items.jsonl").read_text().splitlines()]
    assert {r["benchmark"] for r in rows} >= {"mine", "second"} and {r["model"] for r in rows} == {"base", "base+adapter"}
    assert {r["quantize"] for r in rows} == {"nf4"}                                # the base as phase 3 trained it
    assert (d / "results.csv").exists() and (d / "figures" / "accuracy.png").exists()
    assert (d / "figures" / "nll.png").exists()


@pytest.mark.slow
def test_notebook_refuses_missing_phase3(tmp_path):
    r = subprocess.run([sys.executable, "-m", "papermill", str(paths.project_root() / "notebooks" / "04_evaluation.ipynb"),
                        str(tmp_path / "o.ipynb"), "-p", "run_dir", str(tmp_path / "run"), "-p", "limit", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "run phase 'pretraining' first" in r.stderr + r.stdout
    assert json.loads((tmp_path / "run" / "04_evaluation" / "phase.json").read_text())["status"] != "complete"
