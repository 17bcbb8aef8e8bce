"""The library functions notebook 04 calls, on small real inputs (no model)."""
import json

import pandas as pd
import pytest

from mathcode.evaluate import compare, nll, steps as pipeline, protocols, figures
from mathcode.evaluate.benchmarks import Item
from mathcode.models import ModelSpecError

ITEMS = [Item("gsm8k", "1", "What is 2+2?", "4", "number", solution="2 + 2 = 4."),
         Item("gsm8k", "2", "What is 3+3?", "6", "number"),
         Item("math", "3", "Compute $1+1$.", "2", "math", solution="$1+1=\\boxed{2}$", meta={"level": "Level 1",
                                                                                            "subject": "Algebra"})]


def _rows(model, correct):
    return [{"model": model, "benchmark": it.benchmark, "item_id": it.id, "correct": c, "gold": it.answer,
             "extracted": it.answer if c else "0", "completion": "", "level": it.meta.get("level"),
             "subject": it.meta.get("subject")} for it, c in zip(ITEMS, correct)]


def test_overview_prompt_text_and_per_benchmark():
    ov = pipeline.items_overview(ITEMS)
    assert ov.set_index("benchmark").loc["gsm8k", "items"] == 2 and ov.set_index("benchmark").loc["math", "with_solution"] == 1
    text = pipeline.prompt_text(protocols.get_protocol("paper"), ITEMS, 0)
    assert "protocol paper, 4 shots" in text and text.endswith("Question: What is 2+2?\nAnswer:")
    assert "outside the selection" in pipeline.prompt_text(protocols.get_protocol("paper"), ITEMS, -1)
    chat = pipeline.prompt_text(protocols.get_protocol("paper", 1), ITEMS, 0, chat=True)
    assert chat.count("[user]") == 2 and chat.count("[assistant]") == 1
    assert [it.id for it in pipeline.per_benchmark(ITEMS, 1)] == ["1", "3"]
    assert [it.id for it in pipeline.per_benchmark(ITEMS, 5, need_solution=True)] == ["1", "3"]


def test_adapter_resolution_and_quantization(tmp_path):
    assert pipeline.resolve_adapter("none") is None
    ad = tmp_path / "run" / "03_pretraining" / "adapter"
    ad.mkdir(parents=True)
    with pytest.raises(ModelSpecError, match="run phase 'pretraining' first"):
        pipeline.resolve_adapter("", run_dir=tmp_path / "run")
    (ad / "adapter_config.json").write_text("{}")
    assert pipeline.resolve_adapter("", run_dir=tmp_path / "run") == str(ad)
    assert pipeline.resolve_adapter(str(ad)) == str(ad)
    with pytest.raises(ModelSpecError, match="has no adapter_config.json"):
        pipeline.resolve_adapter(str(tmp_path))
    assert pipeline.eval_quantize("auto", ad) is None                      # no record: unquantized
    (ad / "mathcode_adapter.json").write_text(json.dumps({"base_model": "m", "quantize": "nf4"}))
    assert pipeline.eval_quantize("auto", ad) == "nf4" and pipeline.eval_quantize("auto", ad, "openai") is None
    assert pipeline.eval_quantize("none", ad) is None and pipeline.eval_quantize("nf4", None) == "nf4"
    with pytest.raises(ModelSpecError, match="quantize='int3'"):
        pipeline.eval_quantize("int3", ad)
    ms = pipeline.models_to_evaluate("m", adapter_dir=str(ad), models=[], quantize="nf4", merged_dir="/x/merged")
    assert [(m.label, m.quantize, m.adapter) for m in ms] == [("base", "nf4", None), ("base+adapter", "nf4", str(ad)),
                                                              ("merged", None, None)]
    with pytest.raises(ModelSpecError, match="trained on 'm'"):
        pipeline.models_to_evaluate("other", adapter_dir=str(ad), models=[])


def test_backend_kwargs():
    assert pipeline.backend_kwargs("openai", base_url="http://h/v1") == {"base_url": "http://h/v1",
                                                                         "api_key_env": "OPENAI_API_KEY"}
    assert pipeline.backend_kwargs("hf") == {} and pipeline.backend_kwargs("vllm") == {}
    with pytest.raises(ModelSpecError, match="backend='tgi'"):
        pipeline.backend_kwargs("tgi")


def test_tables_and_figures_of_the_notebook():
    rows = _rows("base", [True, False, False]) + _rows("base+adapter", [True, True, True])
    acc = compare.accuracy_table(rows)
    assert acc.set_index(["model", "benchmark"]).loc[("base+adapter", "gsm8k"), "accuracy"] == 1.0
    assert figures.bar_chart(acc) is not None
    flips = compare.flips_all(rows, "base", ["base+adapter"])
    assert sorted(flips.item_id) == ["2", "3"] and set(flips.model) == {"base+adapter"}
    lv, sj, fig = figures.math_breakdown(rows)
    assert list(lv.level) == ["Level 1", "Level 1"] and fig is not None
    assert figures.math_breakdown(rows[:2]) == (None, None, None)
    assert compare.pal_status([]).empty
    pal = compare.pal_status([{"model": "base", "program_status": "ok"}, {"model": "base", "program_status": "timeout"}])
    assert set(pal.program_status) == {"ok", "timeout"}
    nll_rows = [{"model": m, "benchmark": "gsm8k", "item_id": i, "tokens": 10, "nll_sum": s, "nll_mean": s / 10}
                for m, vals in (("base", [20.0, 30.0]), ("base+adapter", [15.0, 31.0])) for i, s in zip("ab", vals)]
    table, fig, change = nll.nll_report(nll_rows, "base")
    assert table.set_index("model").loc["base", "nll_per_token"] == 2.5 and fig is not None
    assert change.loc[0, "lower_on"] == 1 and change.loc[0, "mean_change_nats_per_token"] == pytest.approx(-0.2)
    assert nll.nll_report([], "base")[1] is None
    s = pipeline.summary(acc, table)
    assert s["acc_base_gsm8k"] == 0.5 and s["nll_base_gsm8k"] == 2.5


def test_special_prefix_follows_the_tokenizer(embedded_model_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    assert nll.special_prefix(tok) == []                     # SmolLM2 adds no BOS to plain text


    class BosTok:                                             # a Llama-3-style tokenizer puts <|begin_of_text|> first
        def __call__(self, text, add_special_tokens=True):
            ids = [ord(c) for c in text]
            return {"input_ids": ([128000] if add_special_tokens else []) + ids}
    assert nll.special_prefix(BosTok()) == [128000]


def test_adapter_goes_to_vllm_and_is_refused_only_where_it_cannot_apply(tmp_path, monkeypatch):
    from mathcode.evaluate import harness
    m = harness.EvalModel("trained", "embedded:smollm2-135m-instruct", str(tmp_path))
    with pytest.raises(ModelSpecError, match="cannot apply a PEFT adapter; serve it"):
        harness.load_generator(m, backend="openai", base_url="http://127.0.0.1:9/v1")
    seen = {}

    def fake_make(backend, model=None, **kw):            # records what the vLLM backend would be built with
        seen.update(backend=backend, model=model, **kw)
        return "generator"
    import mathcode.generation as G
    monkeypatch.setattr(G, "make_generator", fake_make)
    assert harness.load_generator(m, backend="vllm", device="cuda") == "generator"
    assert seen["backend"] == "vllm" and seen["adapter"] == str(tmp_path)       # LoRARequest, not a refusal
