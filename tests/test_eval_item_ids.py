"""Item ids are unique, and whatever pairs or resumes by id refuses duplicates instead of mixing items."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mathcode.run import ablation, ablation_compare as ac
from mathcode.evaluate import benchmarks as B, compare, nll, steps as pipeline
from mathcode.util import write_jsonl


@pytest.mark.parametrize("n, seed", [(30, 0), (100, 0), (200, 3)])
def test_proxy_ids_are_unique_and_name_one_problem(n, seed):
    """limit 30 draws past the first generated pool (a fifth of the templates are held out): the second pool's
    indices start at 0 again, so an id built from the index alone would name two problems."""
    items = B.load_benchmark("gsm_symbolic_proxy", limit=n, seed=seed)
    assert len(items) == n
    ids = [it.id for it in items]
    assert len(set(ids)) == n, [i for i in ids if ids.count(i) > 1][:3]
    assert len({it.question for it in items}) == n            # n different problems, one id each
    pools = {it.id.rsplit("-", 1)[0] for it in items}
    assert len(pools) >= 2 if n >= 30 else True                # the case that collided draws from two pools


def test_thirty_gsm_symbolic_items_have_one_question_per_id():
    items, _ = pipeline.benchmark_items(["gsm_symbolic_proxy"], limit=30)
    by_id = {}
    for it in items:
        assert by_id.setdefault(it.id, it.question) == it.question, it.id


def test_training_doc_ids_of_gsm_symbolic_are_unique():
    from mathcode.embedded import iter_embedded
    ids = [d["id"] for d in iter_embedded("rg_gsm_symbolic", max_docs=150, seed=0)]
    assert len(ids) == len(set(ids))


def test_require_unique_ids_names_the_duplicates():
    B.require_unique_ids([("gsm8k", "1"), ("gsm8k", "2"), ("math", "1")], "x")
    with pytest.raises(B.DuplicateItemIdError, match=r"where: 1 item id\(s\) occur more than once.*'gsm8k', '1'"):
        B.require_unique_ids([("gsm8k", "1"), ("gsm8k", "2"), ("gsm8k", "1")], "where")


def test_selection_refuses_duplicate_ids_from_any_loader(monkeypatch):
    """A loader that hands out one id twice (as the proxy did) stops the selection, before any generation."""
    twice = [B.Item(B.PROXY_NAME, "gsm_symbolic-heldout-0-14", q, "1", "number") for q in ("A?", "B?")]
    monkeypatch.setattr(B, "load_benchmark", lambda *a, **k: list(twice))
    with pytest.raises(B.DuplicateItemIdError, match=r"evaluation items: 1 item id.*gsm_symbolic-heldout-0-14"):
        pipeline.benchmark_items(["gsm_symbolic_proxy"], limit=2)


def test_paired_comparisons_refuse_duplicate_ids():
    rows = [{"model": m, "benchmark": "gsm8k", "item_id": i, "correct": c}
            for m in ("base", "trained") for i, c in (("1", True), ("2", False))]
    compare.differences(rows, "base")                                        # unique: fine
    rows.append({"model": "trained", "benchmark": "gsm8k", "item_id": "2", "correct": True})
    with pytest.raises(B.DuplicateItemIdError, match="paired comparison, model 'trained'"):
        compare.differences(rows, "base")
    nrows = [{"model": m, "benchmark": "gsm8k", "item_id": "1", "tokens": 3, "nll_sum": 3.0, "nll_mean": 1.0}
             for m in ("base", "trained", "trained")]
    with pytest.raises(B.DuplicateItemIdError, match="NLL probe rows"):
        nll.nll_report(nrows, "base")


def _arm_tree(root, dup_in=None):
    """A finished two-arm, one-seed ablation on disk (what the arms write), optionally with a duplicated id."""
    plan = {"arms": ["basic", "basic+translated"], "reference": "basic", "seeds": [0], "bootstrap": 200,
            "ci": 0.95, "seed": 0, "runs": [{"arm": a, "seed": 0, "dir": f"arms/{ablation.slug(a)}-seed0"}
                                            for a in ("basic", "basic+translated")]}
    (root / "ablation").mkdir(parents=True)
    (root / "ablation/plan.json").write_text(json.dumps(plan))
    for r in plan["runs"]:
        d = root / r["dir"] / "04_evaluation"
        d.mkdir(parents=True)
        (d / "phase.json").write_text(json.dumps({"status": "complete"}))
        shift = -0.1 if "translated" in r["arm"] else 0.0
        ids = [str(i) for i in range(20)]
        if dup_in == r["arm"]:
            ids[5] = "4"                               # two different items under the id "4"
        write_jsonl(d / "items.jsonl", [{"model": "base+adapter", "adapter": "a", "benchmark": "gsm8k",
                                         "item_id": i, "prompt_id": f"p{k}", "mode": "cot", "correct": k % 2 == 0}
                                        for k, i in enumerate(ids)])
        write_jsonl(d / "nll.jsonl", [{"model": "base+adapter", "benchmark": "gsm8k", "item_id": i,
                                       "nll_mean": 1.0 + 0.01 * k + shift} for k, i in enumerate(ids)])
    return root


def test_ablation_comparison_refuses_duplicate_ids(tmp_path):
    ok = ac.compare(_arm_tree(tmp_path / "ok"))
    assert set(ok.metric) == {"nll", "accuracy"}
    bad = _arm_tree(tmp_path / "bad", dup_in="basic+translated")
    with pytest.raises(B.DuplicateItemIdError, match=r"ablation comparison .*'basic\+translated', 0, 'gsm8k', '4'"):
        ac.compare(bad)
    with pytest.raises(B.DuplicateItemIdError, match="items.jsonl"):
        ablation.evaluation_identity(bad / "arms/basic-translated-seed0/04_evaluation")


# --- the NLL probe's own, larger item set ---------------------------------------------------------------------
def test_nll_selection_tops_up_from_the_benchmark_file_and_is_deterministic(benchmarks_dir):
    items, _ = pipeline.benchmark_items(["gsm8k", "math"], limit=5)
    got, rec = pipeline.nll_selection(items, 40)
    per = pd.Series([it.benchmark for it in got]).value_counts()
    assert per["gsm8k"] == 40 and per["math"] == 40
    assert [it.id for it in got[:5]] == [it.id for it in items[:5]]            # the accuracy items first
    assert rec["gsm8k"]["from_selection"] == 5 and rec["gsm8k"]["topped_up"] == 35
    assert all(it.solution for it in got)
    again, _ = pipeline.nll_selection(items, 40)
    assert [(it.benchmark, it.id) for it in again] == [(it.benchmark, it.id) for it in got]
    small, _ = pipeline.nll_selection(items, 2)                                 # below the selection: its first
    assert [(it.benchmark, it.id) for it in small] == [(it.benchmark, it.id)
                                                        for it in pipeline.per_benchmark(items, 2, need_solution=True)]


def test_nll_selection_tops_up_the_proxy_with_unique_ids():
    items, _ = pipeline.benchmark_items(["gsm_symbolic_proxy"], limit=4)
    got, rec = pipeline.nll_selection(items, 60)
    assert len(got) == 60 and len({it.id for it in got}) == 60
    assert rec[B.PROXY_NAME]["topped_up"] == 56


def test_nll_selection_leaves_out_items_seen_in_training(benchmarks_dir):
    items, _ = pipeline.benchmark_items(["gsm8k"], limit=3)
    pool, _ = pipeline.nll_selection(items, 12)
    leaked = pool[7]
    corpus = ["Some unrelated text about primes and 2 + 2 = 4.",
              "A forum post copying a test solution: " + leaked.solution.replace("<<", " ").replace(">>", " ")]
    got, rec = pipeline.nll_selection(items, 12, texts=corpus)
    assert leaked.id not in {it.id for it in got} and len(got) == 12
    assert rec["gsm8k"]["n_contaminated"] == 1 and rec["gsm8k"]["contaminated_left_out"] == [leaked.id]
    hits = pipeline.contaminated(pool, ["the question: " + pool[2].question])
    assert list(hits) == [("gsm8k", pool[2].id)]


def test_solution_nll_batches_by_length_and_keeps_the_item_order(embedded_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)   # as evaluation on CPU
    its = [B.Item("t", str(i), f"What is {i} plus {i}?", str(2 * i), "number",
                  solution=("We add. " * (1 + 3 * (i % 4))) + f"{i} + {i} = {2 * i}.") for i in range(9)]
    one = nll.solution_nll(model, tok, its, batch_size=1, dtype="fp32")
    many = nll.solution_nll(model, tok, its, batch_size=4, dtype="fp32")
    assert [r["item_id"] for r in many] == [it.id for it in its]
    assert np.allclose([r["nll_mean"] for r in one], [r["nll_mean"] for r in many], atol=1e-3)
    half = nll.solution_nll(model, tok, its, batch_size=4, dtype="bf16")      # the CPU default where bf16 is native
    assert np.allclose([r["nll_mean"] for r in half], [r["nll_mean"] for r in many], atol=0.03)
    with pytest.raises(ValueError, match="nll dtype"):
        nll.solution_nll(model, tok, its[:1], dtype="fp16")
