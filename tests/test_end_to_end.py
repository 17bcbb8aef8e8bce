"""The whole kit at smoke scale: the runner executes the four real notebooks on the embedded model."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mathcode import paths
from mathcode.util import read_jsonl

ROOT = paths.project_root()
KEYS = ["01_data", "02_translation", "03_pretraining", "04_evaluation"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("smoke") / "run"
    r = subprocess.run([sys.executable, "-m", "mathcode", "run", "--config", "configs/smoke.yaml",
                        "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return run, r


@pytest.mark.slow
def test_four_complete_manifests_and_a_report(smoke_run):
    run, _ = smoke_run
    for key in KEYS:
        m = json.loads((run / key / "manifest.json").read_text())
        assert m["status"] == "complete", key
        assert m["parameters"]["model"] == "embedded:smollm2-135m-instruct"
        assert m["outputs"] and all(len(o["sha256"]) == 64 for o in m["outputs"])
        assert m["finished"] >= m["started"]
    assert any(i["path"].endswith("01_data/corpus.jsonl")
               for i in json.loads((run / "02_translation/manifest.json").read_text())["inputs"])
    html = (run / "report.html").read_text()
    assert html.count("status complete") >= 4 and "data:image/png;base64" in html


@pytest.mark.slow
def test_the_ablation_comparison_reads_what_the_real_phase4_notebook_wrote(smoke_run, tmp_path):
    """The ablation's comparison reads arm folders' ``04_evaluation`` files; here two arms hold this real run's
    files, so both metrics (accuracy and the gold-solution NLL) must come through, paired on every trained item, and
    identical arms must give the point zero. (The rehearsed ablation runs every arm through the notebooks too, but
    vLLM's CPU build scores no NLL on a LoRA engine, so only this test carries real NLL rows into the comparison.)"""
    import shutil
    from mathcode.run import ablation_compare as ac
    run, _ = smoke_run
    root = tmp_path / "ab"
    runs = [{"arm": arm, "seed": 0, "dir": f"arms/{d}-seed0"} for arm, d in (("basic", "basic"),
                                                                                 ("basic+translated", "bt"))]
    (root / "ablation").mkdir(parents=True)
    (root / "ablation/plan.json").write_text(json.dumps({"arms": ["basic", "basic+translated"], "seeds": [0],
                                                         "reference": "basic", "runs": runs, "ci": 0.95}))
    for r in runs:
        shutil.copytree(run / "04_evaluation", root / r["dir"] / "04_evaluation")
    trained = [r for r in read_jsonl(run / "04_evaluation/items.jsonl")
               if r.get("adapter") and r.get("mode", "cot") == "cot"]
    acc, nll = ac.arm_rows(root)
    assert len(acc) == 2 * len(trained) > 0 and len(nll) > 0
    t = ac.compare(root)
    assert set(t.metric) == {"nll", "accuracy"}
    assert (t["diff"] == 0).all() and (t.ci_low == 0).all() and (t.ci_high == 0).all()
    assert t.sentence.str.contains("the interval is the point zero").all()
    assert t[t.metric == "accuracy"].n_items.sum() == len({(r["benchmark"], str(r["item_id"])) for r in trained})


@pytest.mark.slow
def test_corpus_has_rows_with_provenance(smoke_run):
    run, _ = smoke_run
    rows = read_jsonl(run / "01_data/corpus.jsonl")
    assert len(rows) > 0
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["text"].strip() and r["source"] and isinstance(r["meta"], dict) and r["meta"]
    import datasets
    ds = datasets.load_dataset("parquet", data_files=str(run / "01_data/corpus.parquet"), split="train")
    assert ds.num_rows == len(rows)


@pytest.mark.slow
def test_translation_outcome_counts_add_up(smoke_run):
    run, _ = smoke_run
    d = run / "02_translation"
    blocks = read_jsonl(d / "blocks.jsonl")
    from mathcode.translate.verify import OUTCOMES
    assert all(b["outcome"] in OUTCOMES for b in blocks)
    verified = [b for b in blocks if b["outcome"] == "verified"]
    rejected = read_jsonl(d / "rejected.jsonl")
    assert len(verified) + len(rejected) == len(blocks)
    m = json.loads((d / "manifest.json").read_text())["metrics"]
    assert m["verified_blocks"] == len(verified) and m["blocks"] == len(blocks)
    assert m["passages"] == len(read_jsonl(d / "passages.jsonl")) > 0
    assert sum(t["meta"]["n_verified"] for t in read_jsonl(d / "translated.jsonl")) == len(verified)


@pytest.mark.slow
def test_adapter_loads_with_peft_and_changes_the_logits(smoke_run, embedded_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    run, _ = smoke_run
    adapter = run / "03_pretraining/adapter"
    meta = json.loads((adapter / "mathcode_adapter.json").read_text())
    assert meta["base_model"] == "embedded:smollm2-135m-instruct"
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    base = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    ids = tok("The derivative of $x^2$ is $2x$, so", return_tensors="pt")
    with torch.no_grad():
        before = base(**ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter))
        after = tuned(**ids).logits
    assert (after - before).abs().max().item() > 1e-3


@pytest.mark.slow
def test_evaluation_table_names_the_benchmark_and_scores_what_was_asked(smoke_run):
    import pandas as pd
    run, _ = smoke_run
    d = run / "04_evaluation"
    from mathcode import paths
    from mathcode.evaluate.benchmarks import PROXY_NAME
    res = pd.read_csv(d / "results.csv")
    # the real GSM8K test set when ../shared is beside the checkout, else the labelled offline proxy
    assert set(res["benchmark"]) == ({"gsm8k"} if paths.benchmarks_dir() else {PROXY_NAME})
    assert set(res["model"]) >= {"base"} and len(set(res["model"])) == 2       # base and base + adapter
    assert (res["n"] == 3).all()
    items = read_jsonl(d / "items.jsonl")
    assert len(items) == 3 * 2 and all(isinstance(i["correct"], bool) for i in items)


@pytest.mark.slow
def test_rerun_skips_every_phase(smoke_run):
    run, _ = smoke_run
    r = subprocess.run([sys.executable, "-m", "mathcode", "run", "--config", "configs/smoke.yaml",
                        "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0
    assert r.stdout.count("up to date") == 4, r.stdout


@pytest.mark.slow
def test_pages_in_a_real_browser(smoke_run):
    """report.html and the four executed notebooks, rendered by headless Chromium: no error text, no stderr box,
    no empty figure or header-only table, the worked example and the method figure present; screenshots saved in
    the run folder."""
    from mathcode.run import browser
    if not browser.find_chromium():
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    run, _ = smoke_run
    results = browser.check_run(run)
    assert [c.page for c in results][:1] == ["report.html"] and len(results) == 5
    assert all(c.ok for c in results), browser.summary(results)
    for c in results:
        assert len(c.screenshots) == 2 and all(str(run / "screenshots") in s for s in c.screenshots)
    assert sum(c.images for c in results) >= 5
    nb02 = (run / "02_translation/02_translation.html").read_text()
    assert nb02.count("injected-parameters") == 0                  # one parameters cell, effective values
