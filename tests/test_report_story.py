"""report.html's sentences come from the run's numbers: two runs that differ read differently, and the page is
written without a browser (the browser checks of a real run are in test_end_to_end.py)."""
from __future__ import annotations

import json

import pytest

from mathcode.run import report, report_story as S


def _run(tmp_path, loss_last=3.10, diff=(0.0, -0.33, 0.33), trans=(300, 130000), proxy=True):
    run = tmp_path / "run"
    for key, metrics, params in [
        ("01_data", {"docs_loaded": 1770, "docs_final": 819, "tokens_final": 179905, "near_duplicates_removed": 26,
                     "decontaminated": 0, "decontamination": "decontaminated against gsm8k (2638), math (10000)",
                     "classifier_auc_round2": 1.0}, {"decontam_ngram": 13}),
        ("02_translation", {"passages": 12, "blocks": 12, "verified_blocks": 7, "model": "embedded:qwen2.5-coder-0.5b-instruct",
                            "generation_tokens_per_s": 8.5}, {}),
        ("03_pretraining", {"steps": 20, "train_tokens": trans[1], "block_size": 128, "trainable_params": 4884480,
                            "train_loss_first": 2.81, "train_loss_last": loss_last, "heldout_loss_before": 2.5,
                            "heldout_loss_after": 2.49,
                            "train_tokens_by_part": {"basic": trans[1] - trans[0], "translated": trans[0]}}, {}),
        ("04_evaluation", {}, {"benchmarks": ["gsm8k", "math", "ocw"]}),
    ]:
        d = run / key
        (d / "tables").mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps({"status": "complete", "metrics": metrics, "parameters": {
            "model": "embedded:smollm2-135m-instruct", **params}, "seconds": 1.0}))
    bench = "gsm_symbolic (proxy for gsm8k)" if proxy else "gsm8k"
    (run / "04_evaluation/tables/results.csv").write_text(
        "model,benchmark,n,correct,accuracy,ci_low,ci_high\n"
        f"base,{bench},6,0,0.0,0.0,0.39\nbase+adapter,{bench},6,1,0.167,0.03,0.56\n"
        "base,math,2,0,0.0,0.0,0.66\nbase+adapter,math,2,0,0.0,0.0,0.66\n")
    (run / "04_evaluation/tables/differences.csv").write_text(
        "model,vs,benchmark,n,diff,ci_low,ci_high\n"
        f"base+adapter,base,{bench},6,{diff[0]},{diff[1]},{diff[2]}\n")
    (run / "02_translation/blocks.jsonl").write_text("\n".join(json.dumps(b) for b in [
        {"id": "p1#b0", "passage_id": "p1", "outcome": "verified", "conditions": "3 boxes of 4 apples",
         "expression": "3 \\times 4", "result": "12", "code": "boxes = 3\nper_box = 4\nprint(boxes * per_box)",
         "stdout": "12\n", "exit_status": "ok"},
        {"id": "p2#b0", "passage_id": "p2", "outcome": "hardcoded", "reason": "the printed value is a literal",
         "conditions": "", "expression": "7", "result": "7", "code": "print(7)", "stdout": "7\n",
         "exit_status": "ok"}]) + "\n")
    (run / "02_translation/passages.jsonl").write_text(
        json.dumps({"id": "p1", "text": "Tom has 3 boxes of 4 apples. So he has 3*4=12 apples.", "context": ""}) + "\n"
        + json.dumps({"id": "p2", "text": "The answer is 7.", "context": ""}) + "\n")
    return run


def test_sentences_follow_the_numbers(tmp_path):
    f = S.facts(_run(tmp_path))
    text = " ".join(S.key_numbers(f))
    assert "kept 819 documents" in text and "179,905 tokens" in text
    assert "7 of them (58%)" in text and "10,240 tokens processed" in text
    assert "went from 2.81 to 3.10 (rose" in text                        # never "watch it fall" when it rose
    assert "base 0/6, base+adapter 1/6" in text
    lim = " ".join(S.limitations(f))
    assert "300 of the 130,000 tokens of packed training text (0.23%)" in lim
    assert "Of the 10,240 tokens processed, about 24 would be translated code" in lim       # 20 steps x 4 x 128
    assert "possibly not a single translated block" in lim
    assert "Not the real benchmark: gsm_symbolic (proxy for gsm8k)" in lim
    assert "Asked for but not evaluated" in lim and "ocw" in lim and "gsm8k," not in lim.split("evaluated")[-1]
    assert "include zero" in lim and "-0.33 to +0.33" in lim
    assert "Identical scores for both models" not in lim


def test_another_run_reads_differently(tmp_path):
    f = S.facts(_run(tmp_path, loss_last=2.0, diff=(0.5, 0.17, 0.83), trans=(20000, 130000), proxy=False))
    text, lim = " ".join(S.key_numbers(f)), " ".join(S.limitations(f))
    assert "went from 2.81 to 2.00 (fell" in text
    assert "include zero" not in lim and "excludes zero" in lim
    assert "possibly not a single" not in lim and "proxy" not in lim


def test_worked_examples_in_full_and_the_page(tmp_path):
    run = _run(tmp_path)
    ex = S.worked_examples(run)
    assert ex["verified"]["passage_sentence"] == "So he has 3*4=12 apples."
    assert ex["rejected"]["outcome"] == "hardcoded"
    html = report.write_report(run).read_text()
    for needle in ("id='worked-example'", "class='example verified'", "class='example rejected'",
                   "print(boxes * per_box)", "the printed value is a literal", "id='limitations'", "id='method'"):
        assert needle in html, needle
    assert html.count("status complete") >= 4


def _differences(run, rows):
    (run / "04_evaluation/tables/differences.csv").write_text(
        "model,vs,benchmark,n,diff,ci_low,ci_high\n" + "".join(f"base+adapter,base,{b},6,{d},{lo},{hi}\n"
                                                              for b, d, lo, hi in rows))


def _claims(lim: list[str]) -> dict:
    """Which intervals each generated sentence puts under 'includes zero' / 'excludes zero' / 'identical'."""
    import re
    out = {"include": [], "exclude": [], "identical": [], "every_excludes": False}
    for s in lim:
        pairs = [(float(a), float(b)) for a, b in re.findall(r"interval ([+-]\d+\.\d+) to ([+-]\d+\.\d+)", s)]
        if "include zero" in s:
            out["include"] += pairs
        elif "exclude zero" in s or "excludes zero" in s:
            out["exclude"] += pairs
            out["every_excludes"] |= s.startswith("Every")
        elif s.startswith("Identical scores"):
            out["identical"].append(s)
    return out


@pytest.mark.parametrize("rows", [
    [],                                                                     # no difference at all
    [("gsm8k", 0.0, 0.0, 0.0)],                                             # the only difference is the point zero
    [("gsm8k", 0.5, 0.17, 0.83)],                                           # one, excluding zero
    [("gsm8k", 0.0, 0.0, 0.0), ("math", 0.5, 0.17, 0.83), ("ocw", 0.1, -0.2, 0.4), ("sat", -0.3, -0.5, -0.1)],
])
def test_no_limitation_sentence_contradicts_the_intervals(tmp_path, rows):
    run = _run(tmp_path)
    _differences(run, rows)
    lim = S.limitations(S.facts(run))
    c = _claims(lim)
    for lo, hi in c["include"]:
        assert lo <= 0 <= hi, (lo, hi, lim)
    for lo, hi in c["exclude"]:
        assert lo > 0 or hi < 0, (lo, hi, lim)
    moved = [r for r in rows if r[2] > 0 or r[3] < 0]
    assert len(c["exclude"]) == len(moved)
    assert len(c["include"]) == len([r for r in rows if r[2] <= 0 <= r[3] and not r[2] == r[3] == 0])
    assert c["every_excludes"] == (bool(rows) and len(moved) == len(rows))  # "Every ..." only when it is true
    assert bool(c["identical"]) == any(r[2] == r[3] == 0 for r in rows)


def test_the_ablation_limitations_follow_its_comparison(tmp_path):
    run = _run(tmp_path)
    (run / "ablation").mkdir()
    (run / "ablation/comparison.csv").write_text(
        "benchmark,metric,arm,reference,n_items,n_seeds,diff,ci_low,ci_high,mde\n"
        "gsm8k,nll,basic+translated,basic,200,3,-0.0085,-0.0190,0.0020,0.0142\n"
        "math,nll,basic+translated,basic,200,3,-0.0024,-0.0046,-0.0002,0.0035\n"
        "gsm8k,accuracy,basic+translated,basic,4,3,0,0,0,0\n")
    lim = " ".join(S.limitations(S.facts(run)))
    assert "3 seeds per arm" in lim and "2 degrees of freedom per arm" in lim
    assert "include zero" not in lim.split("whose interval excludes zero")[-1]
    assert "includes zero — no effect can be claimed" in lim and "gsm8k basic+translated − basic -0.0085" in lim
    assert "MDE 0.0142" in lim
    assert "whose interval excludes zero: math basic+translated − basic -0.0024" in lim
    assert "gsm8k basic+translated − basic -0.0085 [-0.0190, +0.0020], MDE 0.0142." not in \
        lim.split("whose interval excludes zero")[-1]
