"""Estimate the training footprint from the model config alone, before any weights are loaded.

Why: loading an 8B model only to run out of memory minutes later is the usual first QLoRA failure. The
estimate counts parameters on the meta device (``accelerate.init_empty_weights``, no allocation), then adds
up: quantized linear weights (NF4 = 4 bits + double-quantized absmax ~0.127 bits), the non-quantized rest
(embeddings, norms, LM head; fp32 when upcast for stability), LoRA weights + grads + AdamW state, checkpointed
activations, and the logits (the largest activation at 128k vocabularies). It is an estimate (±25%), used to
refuse clearly impossible runs with numbers, not to promise a fit.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

GIB = 1024 ** 3


class MemoryBudgetError(MemoryError):
    """The estimated footprint exceeds the memory detected on the device."""


@dataclass
class Estimate:
    device: str
    total_params: int
    quantized_params: int
    other_params: int
    lora_params: int
    weights_bytes: int
    trainable_state_bytes: int
    activation_bytes: int
    logits_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.trainable_state_bytes + self.activation_bytes + self.logits_bytes
                + self.overhead_bytes)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_gib"] = round(self.total_bytes / GIB, 2)
        return d


# Shapes of the flagship base model (the config.json of meta-llama/Meta-Llama-3-8B, a gated repository), so the
# plan and the GPU bench know its size offline. Weights never matter for a footprint estimate.
LLAMA3_8B = dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=4096, intermediate_size=14336,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                 max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0, hidden_act="silu",
                 tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001, attention_bias=False)
KNOWN_SHAPES = {"meta-llama/Meta-Llama-3-8B": LLAMA3_8B, "meta-llama/Llama-3.1-8B": {**LLAMA3_8B,
                "max_position_embeddings": 131072}}


def known_config(spec: str):
    """A transformers config for a model in ``KNOWN_SHAPES`` (no download), else None."""
    if spec not in KNOWN_SHAPES:
        return None
    from transformers import LlamaConfig
    kw = {k: v for k, v in KNOWN_SHAPES[spec].items() if k != "model_type"}
    return LlamaConfig(**kw)


def _config(model_or_config):
    from transformers import AutoConfig, PretrainedConfig
    if isinstance(model_or_config, PretrainedConfig):
        return model_or_config
    from mathcode import models
    try:
        r = models.resolve(model_or_config)
        return AutoConfig.from_pretrained(r.path)
    except Exception:
        cfg = known_config(model_or_config)
        if cfg is None:
            raise
        return cfg


def count_linear_params(config, targets=("all-linear",)) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(total, in decoder linears, other, [(in, out)] of LoRA-targeted linears) on the meta device."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        m = AutoModelForCausalLM.from_config(config)
    out_emb = m.get_output_embeddings()
    seen, total = set(), 0
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for p in m.parameters():                                # tied weights count once (meta init may not tie them)
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    if tied and out_emb is not None and out_emb.weight is not m.get_input_embeddings().weight:
        total -= out_emb.weight.numel()
    lin, shapes = 0, []
    want = None if (targets in ("all-linear", ["all-linear"], ("all-linear",))) else set(targets)
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear) and mod is not out_emb:
            lin += mod.weight.numel()
            if want is None or name.split(".")[-1] in want:
                shapes.append((mod.in_features, mod.out_features))
    return total, lin, total - lin, shapes


def estimate(model_or_config, *, quantize: str = "nf4", device: str = "cpu", lora_r: int = 16,
             lora_targets=("all-linear",), batch_size: int = 1, seq_len: int = 2048,
             gradient_checkpointing: bool = True, train_embeddings: bool = False, upcast_fp32: bool = False,
             compute_dtype: str | None = None) -> Estimate:
    """Footprint of one training process (per device under FSDP/DDP without sharding). ``compute_dtype``: the
    dtype of the non-quantized weights (default: bfloat16 on CUDA, float32 on CPU)."""
    cfg = _config(model_or_config)
    total, lin, other, shapes = count_linear_params(cfg, lora_targets)
    cuda = device.startswith("cuda")
    base_b = (2 if cuda else 4) if compute_dtype in (None, "auto") else (2 if compute_dtype == "bfloat16" else 4)
    other_b = 4 if upcast_fp32 else base_b
    if quantize == "nf4":
        weights = int(lin * (0.5 + 0.127 / 8)) + other * other_b
    else:
        weights = total * base_b
    lora = sum(lora_r * (i + o) for i, o in shapes)
    trainable = lora + (other if train_embeddings else 0)
    state = trainable * (4 + 4 + 8)                                 # fp32 weight copy + grad + AdamW m, v
    hidden = cfg.hidden_size
    layers = cfg.num_hidden_layers
    inter = getattr(cfg, "intermediate_size", 4 * hidden)
    tokens = batch_size * seq_len
    per_layer_full = tokens * (10 * hidden + 3 * inter) * 2        # attention + MLP intermediates, bf16
    if gradient_checkpointing:
        act = tokens * hidden * 2 * layers + per_layer_full          # checkpoints + one recomputed layer
    else:
        act = per_layer_full * layers
    logits = tokens * cfg.vocab_size * (2 + 4 + 4)                 # bf16 logits, fp32 upcast for the loss, its grad
    overhead = int(0.5 * GIB) if cuda else int(0.8 * GIB)           # CUDA context / Python + torch runtime
    return Estimate(device, total, lin, other, lora, weights, state, act, logits, overhead)


def available_bytes(device: str) -> int:
    """Free memory where training will run: CUDA free memory of the current device, else available RAM."""
    if device.startswith("cuda"):
        import torch
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    import psutil
    return int(psutil.virtual_memory().available)


def check_fits(est: Estimate, available: int | None = None, name: str = "model") -> dict:
    """Raise MemoryBudgetError with the numbers when the estimate exceeds the detected memory."""
    avail = available_bytes(est.device) if available is None else available
    d = est.as_dict()
    d["available_gib"] = round(avail / GIB, 2)
    if est.total_bytes > avail:
        raise MemoryBudgetError(
            f"{name}: estimated training footprint {est.total_bytes / GIB:.1f} GiB (weights "
            f"{est.weights_bytes / GIB:.1f}, LoRA/optimizer {est.trainable_state_bytes / GIB:.1f}, activations "
            f"{est.activation_bytes / GIB:.1f}, logits {est.logits_bytes / GIB:.1f}) exceeds the "
            f"{avail / GIB:.1f} GiB available on {est.device}; use quantize='nf4', a smaller block_size or "
            f"per_device_batch_size, gradient_checkpointing=True, or a bigger device")
    return d


def as_table(mem: dict):
    """The estimate (``check_fits`` / ``Estimate.as_dict``) as a one-column table, bytes shown in MiB."""
    import pandas as pd
    return (pd.DataFrame([{k: (round(v / 2 ** 20, 1) if k.endswith("_bytes") else v) for k, v in mem.items()}]).T
            .rename(columns={0: "value (bytes as MiB)"}))
