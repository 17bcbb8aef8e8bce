"""The model resolver and the local generation backend, on the real embedded model."""
from __future__ import annotations

import json

import pytest

from mathcode import models
from mathcode.generation import GenConfig, make_generator, truncate_at_stop

EMBEDDED = models.DEFAULT_MODEL


@pytest.mark.parametrize("spec, needle", [
    ("embedded:gpt-17", "known: embedded:smollm2-135m-instruct"),
    ("./no/such/folder", "does not exist"),
    ("", "non-empty"),
])
def test_bad_specs_say_what_to_do(spec, needle):
    with pytest.raises(models.ModelSpecError, match=needle):
        models.resolve(spec)


def test_unknown_hub_id_offline_names_the_id_and_suggests_embedded(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelSpecError) as e:
        models.resolve("some-org/some-model-that-is-not-cached")
    assert "some-org/some-model-that-is-not-cached" in str(e.value) and EMBEDDED in str(e.value)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(models.ModelSpecError, match="config.json"):
        models.resolve(str(tmp_path))


def test_embedded_model_is_converted_once_to_a_hf_folder(embedded_model_dir):
    files = {p.name for p in embedded_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "mathcode_model.json"} <= files
    meta = json.loads((embedded_model_dir / "mathcode_model.json").read_text())
    assert meta["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    stamp = (embedded_model_dir / "model.safetensors").stat().st_mtime
    assert models.resolve(EMBEDDED).path == str(embedded_model_dir)        # cached: no second conversion
    assert (embedded_model_dir / "model.safetensors").stat().st_mtime == stamp
    # a local folder spec of the same files resolves as "local"
    assert models.resolve(str(embedded_model_dir)).kind == "local"


@pytest.mark.slow
def test_nf4_load_gives_real_bitsandbytes_4bit_layers(embedded_model_dir):
    import bitsandbytes as bnb
    m = models.load_model(EMBEDDED, quantize="nf4", device="cpu")
    n4 = sum(isinstance(x, bnb.nn.Linear4bit) for x in m.modules())
    assert n4 >= 30 * 7                                  # every attention/MLP projection of the 30 layers
    w = next(x for x in m.modules() if isinstance(x, bnb.nn.Linear4bit)).weight
    assert w.quant_state.quant_type == "nf4" and w.quant_state.nested     # double quantization
    # 4-bit projections (~40 MB) + the tied 49152x576 embedding kept in fp32 on CPU (113 MB); the unquantized
    # fp32 model is ~540 MB
    assert m.get_memory_footprint() < 180e6


@pytest.mark.slow
def test_hf_backend_batches_with_left_padding_and_honours_stop_strings(embedded_model_dir):
    g = make_generator("hf", EMBEDDED, device="cpu")
    prompts = ["The capital of France is", "2 + 2 = 4. 3 + 3 = 6. 4 + 4 ="]
    cfg = GenConfig(max_new_tokens=8, batch_size=2)
    batched = g.complete(prompts, cfg)
    single = [g.complete([p], GenConfig(max_new_tokens=8, batch_size=1))[0] for p in prompts]
    assert [c.text for c in batched] == [c.text for c in single]          # padding does not change greedy output
    assert all(c.completion_tokens > 0 and c.prompt_tokens > 0 for c in batched)
    chat = g.chat([[{"role": "user", "content": "Count: one, two, three, four, five."}]],
                  GenConfig(max_new_tokens=30, stop=["three"]))[0]
    assert "three" not in chat.text
    assert g.info()["completion_tokens"] > 0 and g.tokens_per_second > 0
    assert "<|im_start|>assistant" in g.render_chat([{"role": "user", "content": "hi"}])


def test_truncate_at_stop_takes_the_earliest():
    assert truncate_at_stop("a\n\nb Q: c", ["Q:", "\n\n"]) == ("a", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
