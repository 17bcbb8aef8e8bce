"""The generation package: backend registry, import hygiene, and the special tokens each model expects."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mathcode import generation
from mathcode.generation import GenConfig, Generator, make_generator
from mathcode.generation.hf import encode_prompt, special_prefix


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(generation.UnknownBackendError) as e:
        make_generator("llama-server-9000", "embedded:smollm2-135m-instruct")
    for name in ("hf", "openai", "vllm", "llamacpp", "auto"):
        assert repr(name) in str(e.value)
    assert isinstance(e.value, ValueError)           # callers that catch ValueError keep working


class _Echo(Generator):
    backend = "echo"

    def render_chat(self, messages):
        return "\n".join(m["content"] for m in messages)

    def _generate(self, prompts, cfg):
        from mathcode.generation import Completion
        return [Completion(text=p[::-1][: cfg.max_new_tokens], completion_tokens=1, finish_reason="stop")
                for p in prompts]


def test_a_registered_backend_is_built_by_name(monkeypatch):
    monkeypatch.setitem(generation.BACKENDS, "echo", _Echo)
    g = make_generator("echo", "any-model")
    assert g.chat([[{"role": "user", "content": "abc"}]], GenConfig(max_new_tokens=2))[0].text == "cb"
    assert g.info()["backend"] == "echo" and g.stats["requests"] == 1
    with pytest.raises(TypeError):
        generation.register_backend("bad", object)


def test_auto_picks_llamacpp_only_for_gguf_specs_on_cpu(monkeypatch):
    from mathcode.generation import registry
    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    monkeypatch.setattr(registry, "vllm_available", lambda: False)
    assert generation.choose_backend("auto", "embedded:qwen2.5-coder-0.5b-instruct", "cpu") == "llamacpp"
    assert generation.choose_backend("auto", "/models/x.gguf", "cpu") == "llamacpp"
    assert generation.choose_backend("auto", "HuggingFaceTB/SmolLM2-135M", "cpu") == "hf"
    assert generation.choose_backend("auto", "embedded:qwen2.5-coder-0.5b-instruct", "cuda") == "hf"
    assert generation.choose_backend("openai", "embedded:qwen2.5-coder-0.5b-instruct", "cpu") == "openai"
    monkeypatch.setattr(registry, "llamacpp_available", lambda: False)       # no compiled llama.cpp: still runs
    assert generation.choose_backend("auto", "embedded:qwen2.5-coder-0.5b-instruct", "cpu") == "hf"


def test_auto_picks_a_managed_vllm_server_for_gguf_translators_on_cpu_where_vllm_is_installed(monkeypatch):
    """The measured fastest CPU route (bench/bench_translate.py --routes): the openai backend with a vLLM server
    the kit starts on a free port; nothing changes where vLLM is not installed, or on a GPU."""
    from mathcode.generation import registry
    monkeypatch.setattr(registry, "vllm_available", lambda: True)
    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    assert generation.choose_backend("auto", "embedded:qwen2.5-coder-0.5b-instruct", "cpu") == "openai"
    assert generation.choose_backend("auto", "embedded:qwen2.5-coder-0.5b-instruct", "cuda") == "hf"
    assert generation.choose_backend("auto", "HuggingFaceTB/SmolLM2-135M", "cpu") == "hf"
    name, kw = registry.backend_settings("auto", "embedded:qwen2.5-coder-0.5b-instruct", device="cpu", threads=1,
                                         base_url="http://127.0.0.1:8000/v1", concurrency=4)
    assert name == "openai" and kw["serve"] == "vllm" and kw["base_url"] == "http://127.0.0.1:0/v1"
    assert "--enforce-eager" in kw["serve_args"] and kw["concurrency"] == 16 and "threads" not in kw


def test_auto_keeps_llamacpp_for_a_phase_too_short_to_repay_the_servers_start(monkeypatch):
    """A server's start costs minutes; with fewer passages than AUTO_SERVED_MIN_PROMPTS, llama.cpp (which starts at
    once) is the faster route, so auto picks it — also through the settings mapping translation uses."""
    from mathcode.generation import registry
    monkeypatch.setattr(registry, "vllm_available", lambda: True)
    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    spec, n = "embedded:qwen2.5-coder-0.5b-instruct", registry.AUTO_SERVED_MIN_PROMPTS
    assert generation.choose_backend("auto", spec, "cpu", expected_prompts=n - 1) == "llamacpp"
    assert generation.choose_backend("auto", spec, "cpu", expected_prompts=n) == "openai"
    name, kw = registry.backend_settings("auto", spec, device="cpu", threads=1, expected_prompts=12)
    assert name == "llamacpp" and kw["threads"] == 1 and "expected_prompts" not in kw and "serve" not in kw
    name, kw = registry.backend_settings("auto", spec, device="cpu", threads=1, expected_prompts=500)
    assert name == "openai" and kw["serve"] == "vllm" and "expected_prompts" not in kw


@pytest.mark.parametrize("module", ["base", "registry", "hf", "openai", "vllm", "llamacpp"])
def test_each_backend_module_imports_alone_without_the_others(module):
    """No circular imports: a fresh interpreter imports one module; no sibling backend module comes with it."""
    code = (f"import sys, mathcode.generation.{module}\n"
            "others = {'hf', 'openai', 'vllm', 'llamacpp'} - {" + repr(module) + "}\n"
            "loaded = [m for m in others if 'mathcode.generation.' + m in sys.modules]\n"
            "assert not loaded or " + repr(module) + " == 'vllm' and loaded == ['hf'], loaded\n"
            "assert 'vllm' not in sys.modules and 'llama_cpp' not in sys.modules and 'torch' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# --- BOS / special tokens -------------------------------------------------------------------------------

def _bos_tokenizer():
    """A real fast tokenizer that, like Llama-3's, adds <|begin_of_text|> through its post-processor."""
    from tokenizers import Tokenizer, models as tm, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {"<|begin_of_text|>": 0, "<|end_of_text|>": 1, "[UNK]": 2, "Hello": 3, "world": 4, "hi": 5, "2": 6,
             "+": 7, "=": 8}
    t = Tokenizer(tm.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                     special_tokens=[("<|begin_of_text|>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                                   pad_token="<|end_of_text|>", unk_token="[UNK]")


def test_bos_is_added_once_for_a_tokenizer_that_expects_it():
    tok = _bos_tokenizer()
    prefix = special_prefix(tok)
    assert prefix == [0]
    assert encode_prompt(tok, "2 + 2 =", prefix) == [0, 6, 7, 6, 8]
    assert encode_prompt(tok, "<|begin_of_text|>2 + 2 =", prefix) == [0, 6, 7, 6, 8]      # never doubled


def test_hf_complete_feeds_the_bos_the_model_expects():
    """complete() on a (tiny, random) Llama model with a BOS-adding tokenizer: the model sees BOS exactly once."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = _bos_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, bos_token_id=0,
                                         eos_token_id=1, pad_token_id=1)).eval()
    seen = []
    model.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["input_ids"][:, :].tolist())
                                    if kw.get("input_ids") is not None and not seen else None, with_kwargs=True)
    g = make_generator("hf", "tiny-llama", model_obj=model, tokenizer=tok, device="cpu")
    out = g.complete(["2 + 2 =", "<|begin_of_text|>2 + 2 ="], GenConfig(max_new_tokens=2, batch_size=2))
    assert [c.prompt_tokens for c in out] == [5, 5]
    assert seen and all(row == [0, 6, 7, 6, 8] for row in seen[0])


def test_embedded_models_add_no_bos(embedded_model_dir):
    """SmolLM2 (and Qwen) tokenizers add no special token in front: the prompt text is fed as is."""
    from mathcode.models import load_tokenizer
    tok = load_tokenizer("embedded:smollm2-135m-instruct")
    assert special_prefix(tok) == []
    text = "<|im_start|>user\nhi<|im_end|>\n"
    assert encode_prompt(tok, text, []) == tok(text, add_special_tokens=False)["input_ids"]


def test_from_params_drops_what_the_backend_does_not_take(monkeypatch):
    seen = {}

    class _Strict(_Echo):
        def __init__(self, model, *, n_parallel: int = 1):
            super().__init__(model)
            seen.update(n_parallel=n_parallel)

    monkeypatch.setitem(generation.BACKENDS, "strict", _Strict)
    g = generation.from_params("strict", "m", n_parallel=3, base_url="http://x", quantize="nf4")
    assert isinstance(g, _Strict) and seen == {"n_parallel": 3}


def test_one_settings_mapping_for_translation_and_evaluation(monkeypatch):
    """A backend declares the settings it takes (registry.SETTINGS); translation's open_translator and
    evaluation's backend_kwargs / load_generator both build through registry.backend_settings."""
    from mathcode.generation import registry
    given = dict(device="cpu", quantize="nf4", threads=2, base_url="http://h/v1", api_key_env="KEY", concurrency=3,
                 timeout=9.0, adapter=None, n_parallel=None)
    # what each backend got from translation's notebook parameters before (translate.steps.BACKEND_KW)
    assert registry.backend_settings("hf", **given)[1] == {"device": "cpu", "quantize": "nf4", "threads": 2}
    assert registry.backend_settings("llamacpp", **given)[1] == {"device": "cpu", "threads": 2}
    assert registry.backend_settings("openai", **given)[1] == {"base_url": "http://h/v1", "api_key_env": "KEY",
                                                                "concurrency": 3, "timeout": 9.0}
    assert registry.backend_settings("vllm", **given)[1] == {"device": "cpu"}
    assert registry.backend_settings("auto", **given)[1] == {"device": "cpu", "quantize": "nf4", "threads": 2,
                                                             "base_url": "http://h/v1", "api_key_env": "KEY",
                                                             "concurrency": 3, "timeout": 9.0}
    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    monkeypatch.setattr(registry, "vllm_available", lambda: False)
    assert registry.backend_settings("auto", "embedded:qwen2.5-coder-0.5b-instruct", **given) == \
        ("llamacpp", {"device": "cpu", "threads": 2})
    with pytest.raises(registry.UnsupportedSettingError, match="backends that can: 'hf', 'vllm'"):
        registry.backend_settings("openai", adapter="/a")
    with pytest.raises(registry.UnknownBackendError, match="backend='tgi'"):
        registry.backend_settings("tgi")
    # both phases go through it
    seen = []
    monkeypatch.setattr(registry, "make_generator", lambda name, model=None, **kw: seen.append((name, kw)) or "g")
    from mathcode.translate import steps as W
    assert W.open_translator("openai", "served", base_url="http://h/v1", api_key_env="KEY", threads=2) == "g"
    assert seen[-1] == ("openai", {"base_url": "http://h/v1", "api_key_env": "KEY", "concurrency": 4,
                                   "timeout": 300.0})
    from mathcode.evaluate import steps as E
    assert E.backend_kwargs("openai", base_url="http://h/v1", threads=2) == {"base_url": "http://h/v1",
                                                                            "api_key_env": "OPENAI_API_KEY"}
    assert E.backend_kwargs("llamacpp", base_url="http://h/v1", threads=2) == {"threads": 2}


# --- scoring (Generator.nll) ---------------------------------------------------------------------------------

def _reference_nll(model, tokenizer, pairs, batch_size, max_tokens=768):
    """An independent plain-PyTorch NLL (fp32): right-padded batches sorted by length, log-softmax over the logits,
    the continuation's tokens summed; the same tokenization and truncation rule the backend documents."""
    import torch
    full = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    n = len(full) - len(plain)
    prefix = list(full[:n]) if n > 0 and full[n:n + len(plain)] == plain else []
    rows = []
    for q, sol in pairs:
        ctx = prefix + tokenizer(q, add_special_tokens=False)["input_ids"]
        tgt = tokenizer(sol, add_special_tokens=False)["input_ids"]
        ids = (ctx + tgt)[-max_tokens:]
        if len(tgt) >= max_tokens:
            ids = ctx[:1] + tgt[-(max_tokens - 1):] if ctx else tgt[-max_tokens:]
        rows.append((ids, min(len(tgt), len(ids) - 1)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(rows)), key=lambda k: len(rows[k][0]))
    out = {}
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        chunk = [rows[k] for k in idx]
        L = max(len(p[0]) for p in chunk)
        ids = torch.full((len(chunk), L), pad, dtype=torch.long)
        att = torch.zeros((len(chunk), L), dtype=torch.long)
        for r, (seq, _) in enumerate(chunk):
            ids[r, :len(seq)] = torch.tensor(seq)
            att[r, :len(seq)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=att).logits.float()
        tok_lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        for r, (seq, n_tgt) in enumerate(chunk):
            lp = tok_lp[r, len(seq) - 1 - n_tgt:len(seq) - 1]
            out[idx[r]] = {"tokens": int(n_tgt), "nll_sum": float(-lp.sum()), "nll_mean": float(-lp.mean())}
    return [out[k] for k in range(len(rows))]


def test_hf_nll_equals_a_plain_pytorch_reference(embedded_model_dir):
    """Generator.nll on the hf backend (the embedded SmolLM2) gives exactly the numbers of a plain PyTorch
    computation written apart from it, for (context, continuation) pairs and for plain texts (empty context)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from mathcode.evaluate import nll as probe_mod
    from mathcode.evaluate.benchmarks import Item
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    g = make_generator("hf", "embedded:smollm2-135m-instruct", model_obj=model, tokenizer=tok, device="cpu")
    assert g.can_score
    pairs = [("Question: What is 2 plus 3?\nAnswer:", " 2 + 3 = 5. The answer is 5."),
             ("Question: Simplify $\\frac{6}{8}$.\nAnswer:", " $\\frac{6}{8} = \\boxed{\\frac{3}{4}}$"),
             ("Question: A train goes 60 km in 1.5 hours. What is its speed?\nAnswer:",
              " Its speed is 60 / 1.5 = 40 km per hour. The answer is 40.")]
    for bs in (1, 2):
        assert g.nll(pairs, batch_size=bs, dtype="fp32") == _reference_nll(model, g.tokenizer, pairs, bs)
    texts = ["The derivative of x^2 is 2x.", "Prime numbers have exactly two divisors."]
    assert g.nll(texts, batch_size=2, dtype="fp32") == _reference_nll(model, g.tokenizer, [("", t) for t in texts], 2)
    assert g.nll(pairs[:1], max_tokens=8, dtype="fp32") == _reference_nll(model, g.tokenizer, pairs[:1], 8, 8)
    # the probe's rows: the item's question in the paper template, the solution after the target delimiter
    items = [Item("gsm8k", str(i), q.split("Question: ")[1].split("\n")[0], "0", "number", solution=s[1:])
             for i, (q, s) in enumerate(pairs)] + [Item("gsm8k", "nosol", "Q?", "1", "number")]
    rows = probe_mod.probe(g, items, batch_size=2, dtype="fp32")
    ref = _reference_nll(model, g.tokenizer, pairs, 2)
    assert [r["item_id"] for r in rows] == ["0", "1", "2"]
    assert [{k: r[k] for k in ("tokens", "nll_sum", "nll_mean")} for r in rows] == ref
    assert probe_mod.solution_nll(model, g.tokenizer, items, batch_size=2, dtype="fp32") == rows


def test_a_backend_that_cannot_score_says_so(tmp_path, monkeypatch):
    from mathcode.evaluate import harness, steps
    from mathcode.evaluate.benchmarks import Item
    from mathcode.generation.base import ScoringUnsupported
    g = _Echo("m")
    assert not g.can_score
    with pytest.raises(ScoringUnsupported, match="backend 'echo' cannot score text.*backends that can: hf"):
        g.nll(["some text"])
    monkeypatch.setattr(harness, "load_generator", lambda m, **kw: _Echo(m.spec))
    items = [Item("gsm8k", "1", "What is 2+2?", "4", "number", solution="2 + 2 = 4.")]
    res = steps.evaluate_models([harness.EvalModel("base", "m")], items, out_dir=tmp_path / "04_evaluation",
                                backend="echo", nll_probe=True, nll_limit=1, max_new_tokens=4)
    assert res.nll_rows == [] and len(res.notes) == 1
    assert "NLL probe skipped for model 'base': backend 'echo' cannot score text" in res.notes[0]
