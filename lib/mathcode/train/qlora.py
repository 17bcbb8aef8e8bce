"""Model preparation for QLoRA: 4-bit NF4 base (double quantization), LoRA on linear layers, optional
embedding/LM-head training, gradient checkpointing, optimizer choice.

The same path runs on CPU (bitsandbytes >= 0.45 has CPU 4-bit kernels) and CUDA. Under ``accelerate launch``
each process loads its copy on its own local device (``LOCAL_RANK``), and for FSDP the 4-bit storage dtype is
bf16 so FSDP can shard the quantized weights alongside the rest.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, asdict, field

from mathcode import models


class LoraTargetError(ValueError):
    """LoRA target names that match no module; the message lists the available ones."""


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list = field(default_factory=lambda: ["all-linear"])
    train_embeddings: bool = False          # also train input embeddings + LM head (continued-pretraining practice)

    def as_dict(self) -> dict:
        return asdict(self)


def local_device(device: str = "auto") -> str:
    """This process's device: ``cuda:LOCAL_RANK`` under a distributed launch, else ``models.pick_device``."""
    dev = models.pick_device(device)
    if dev == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return dev


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


COMPUTE_DTYPES = ("auto", "float32", "bfloat16")


def cpu_has_fast_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has native bf16 matmul instructions (AVX512-BF16 or AMX-BF16; Linux /proc/cpuinfo).

    Why it matters: on such a CPU one NF4 layer ran 3-4x faster in bf16 than in fp32; on AVX2-only CPUs bf16
    is emulated and ~30x slower (both measured, bench/README.md)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def choose_compute_dtype(requested: str = "auto", device: str = "cpu") -> tuple[str, str]:
    """(dtype name, why) for the 4-bit layers' compute and the non-quantized weights.

    auto: bfloat16 on CUDA (as QLoRA); on CPU bfloat16 when the CPU has native bf16 instructions, else float32.
    """
    if requested not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype={requested!r}: write one of {', '.join(COMPUTE_DTYPES)}")
    if requested != "auto":
        return requested, "set by the compute_dtype parameter"
    if str(device).startswith("cuda"):
        return "bfloat16", "auto: CUDA device (bf16 tensor cores, as QLoRA)"
    if cpu_has_fast_bf16():
        return "bfloat16", "auto: the CPU has AVX512-BF16/AMX-BF16 (native bf16 matmul)"
    return "float32", "auto: the CPU has no native bf16 matmul (bf16 would be emulated, much slower)"


def fsdp_active() -> bool:
    return is_distributed() and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def load_base(spec: str, *, quantize: str = "nf4", device: str = "auto", cache_dir=None,
              compute_dtype: str = "auto"):
    """Load the base model for training: NF4 4-bit (``quantize='nf4'``) or unquantized (``'none'``).

    ``compute_dtype`` (auto | float32 | bfloat16, see ``choose_compute_dtype``) is the 4-bit layers' compute
    dtype and the dtype of the non-quantized weights. Under FSDP the 4-bit storage dtype equals it, so FSDP
    flattens parameters of one dtype (QLoRA + FSDP)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    r = models.resolve(spec, cache_dir)
    dev = local_device(device)
    name, _ = choose_compute_dtype(compute_dtype, dev)
    dtype = getattr(torch, name)
    kw: dict = {"device_map": {"": dev}, "dtype": dtype}
    if quantize == "nf4" and not dev.startswith("cuda"):
        # CPU: no autocast, so the non-quantized weights (norms, embeddings, LM head) stay fp32 (attach_lora upcasts
        # them anyway) and only the 4-bit matmuls - nearly all the compute - run in the chosen dtype
        kw["dtype"] = torch.float32
    if quantize == "nf4":
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dtype)
        if fsdp_active():
            q.bnb_4bit_quant_storage = dtype                 # FSDP shards params of one dtype
            kw.pop("device_map")                             # FSDP places the shards
        kw["quantization_config"] = q
    elif quantize in ("none", "", None):
        pass
    else:
        raise models.ModelSpecError(f"quantize={quantize!r} is not supported for training; use 'nf4' or 'none'")
    model = AutoModelForCausalLM.from_pretrained(r.path, **kw)
    model.config.use_cache = False                          # no KV cache while training
    return model


def linear_module_names(model) -> list[str]:
    """Short names of linear layers (nn.Linear or bitsandbytes 4-bit) that LoRA can target, LM head excluded."""
    import torch
    try:
        import bitsandbytes as bnb
        kinds = (torch.nn.Linear, bnb.nn.Linear4bit)
    except ImportError:
        kinds = (torch.nn.Linear,)
    head = model.get_output_embeddings()
    return sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, kinds) and m is not head})


def check_targets(model, targets) -> list[str] | str:
    """``targets`` as PEFT wants them; unknown names raise LoraTargetError listing what exists."""
    if isinstance(targets, str):
        targets = [targets]
    targets = list(targets)
    if not targets:
        raise LoraTargetError("lora_targets is empty; use ['all-linear'] or some of: "
                              + ", ".join(linear_module_names(model)))
    if targets == ["all-linear"]:
        return "all-linear"
    avail = linear_module_names(model)
    bad = [t for t in targets if t not in avail]
    if bad:
        raise LoraTargetError(f"lora_targets {bad} match no linear module of {type(model).__name__}; "
                              f"available: {', '.join(avail)} (or 'all-linear')")
    return targets


def _upcast_norms(model):
    """Freeze everything; cast only small non-quantized params (norms, biases) to fp32.

    Why not always ``peft.prepare_model_for_kbit_training``: it upcasts *all* non-4-bit weights to fp32,
    which for Llama-3-8B adds ~2.1 GB (embeddings + LM head, 1.05 B params) to a ~5.5 GB model on the GPU.
    """
    import torch
    big = {id(model.get_input_embeddings().weight)}
    if model.get_output_embeddings() is not None:
        big.add(id(model.get_output_embeddings().weight))
    for p in model.parameters():
        p.requires_grad = False
        if id(p) not in big and p.dtype in (torch.float16, torch.bfloat16) and p.__class__.__name__ != "Params4bit":
            p.data = p.data.to(torch.float32)


def attach_lora(model, lora: LoraSettings, *, gradient_checkpointing: bool = True, upcast: str = "auto"):
    """Freeze the base, enable checkpointing, attach LoRA. ``upcast``: 'all' (PEFT default), 'norms', 'none',
    'auto' ('none' under FSDP, which needs one dtype for all flattened parameters; 'all' on CPU, where there is no
    autocast to reconcile fp32 norms with bf16 weights; 'norms' on CUDA, which saves fp32 embeddings' memory)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    targets = check_targets(model, lora.targets)
    dev = str(next(model.parameters()).device)
    if upcast == "auto":
        import torch
        upcast = "none" if fsdp_active() else "norms" if dev.startswith("cuda") else "all"
    gc_kwargs = {"use_reentrant": False}
    quantized = getattr(model, "is_loaded_in_4bit", False)
    if upcast == "all" and quantized and not fsdp_active():
        # PEFT's upcast only: its checkpointing call uses the name transformers 5 deprecates (a warning a reader
        # would take for a fault), so checkpointing is switched on below under the current name
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        _upcast_norms(model) if upcast == "norms" else [p.requires_grad_(False) for p in model.parameters()]
    if gradient_checkpointing:
        enable_checkpointing(model, gc_kwargs)
    modules_to_save = None
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    if lora.train_embeddings:
        emb = _module_name(model, model.get_input_embeddings())
        head = _module_name(model, model.get_output_embeddings())
        modules_to_save = [emb] + ([head] if head and not tied else [])
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                     bias="none", task_type="CAUSAL_LM", modules_to_save=modules_to_save,
                     ensure_weight_tying=tied and lora.train_embeddings)
    # under FSDP the adapters keep the base dtype (no fp32 autocast), so every flattened parameter has one dtype
    import warnings
    with warnings.catch_warnings():
        # PEFT 0.21 reads ``is_gradient_checkpointing``, a name transformers 5 deprecates; nothing for a user to do
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        peft_model = get_peft_model(model, cfg, autocast_adapter_dtype=not fsdp_active())
    keep_autograd_layout(peft_model)
    return peft_model


class PackedLayoutError(RuntimeError):
    """A 4-bit layer of a model being trained is in bitsandbytes' CPU inference layout (no autograd kernel)."""


def four_bit_layers(model) -> list:
    """Every bitsandbytes ``Linear4bit`` in ``model`` (empty when bitsandbytes is absent or nothing is quantized)."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def is_packed_for_cpu_inference(layer) -> bool:
    """True when ``layer``'s weight was converted to the packed CPU inference layout (``F.gemv_4bit``)."""
    qs = getattr(layer.weight, "quant_state", None)
    return bool(getattr(qs, "packing_format_for_cpu", False))


def keep_autograd_layout(model) -> int:
    """Keep every 4-bit layer of a model that will be trained on the matmul that has an autograd kernel.

    Why: bitsandbytes (0.50) converts a ``Linear4bit`` weight, once and for good, to a packed CPU inference layout the
    first time the layer runs on a CPU with AVX512-BF16 in eval mode without grad - exactly what a held-out evaluation
    (``Trainer.evaluate``, before training or every ``eval_steps``) does. From then on ``matmul_4bit`` calls
    ``F.gemv_4bit``, which has no autograd kernel: the gradient that should flow *through* every frozen 4-bit layer
    is silently dropped (measured: first-step LoRA gradients with vs. without a prior evaluation had cosine -0.55).

    Why the guard sits here, at preparation for training (``attach_lora`` calls it, ``build_trainer`` calls it
    again): it is the one point every training path passes (notebook, distributed entry point, bench), it holds for
    whatever runs later on that model object (evaluations before or during training, a resumed checkpoint, a cell run
    twice), and it leaves inference alone - phase 4 loads its model with ``models.load_model`` and keeps the fast packed
    kernel. Evaluations of a training model run the same dequantize-and-matmul path as training, so the held-out loss
    is measured on exactly the weights being trained. The layer attribute that gates the conversion
    (``support_avx512bf16_for_cpu``) is switched off; ``trainer.LayoutGuard`` re-checks the layout at every step, so a
    future bitsandbytes that converts some other way fails loudly instead of training on wrong gradients.

    A layer already converted (the model ran inference before) is refused: the way back is lossy in bitsandbytes
    (absmax rounded to bf16 and re-quantized), so the base would no longer be the one that was loaded. Returns the
    number of 4-bit layers guarded."""
    layers = four_bit_layers(model)
    packed = [m for m in layers if is_packed_for_cpu_inference(m)]
    if packed:
        raise PackedLayoutError(
            f"{len(packed)} of {len(layers)} 4-bit layers were already converted to bitsandbytes' CPU inference "
            f"layout (this model ran an evaluation or generation before it was prepared for training); that layout has "
            f"no autograd kernel. Load a fresh base with qlora.load_base(...) and prepare it for training before any "
            f"evaluation.")
    for m in layers:
        m.support_avx512bf16_for_cpu = False
    return len(layers)


def enable_checkpointing(model, kwargs: dict) -> None:
    """Activation checkpointing under the transformers 5 name (``activation_checkpointing_enable``), falling back
    to the 4.x name; inputs require grad so checkpointed blocks over a frozen embedding still backpropagate."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.enable_input_require_grads()


def _module_name(model, module) -> str | None:
    for n, m in model.named_modules():
        if m is module:
            return n.split(".")[-1]
    return None


def parameter_count(p) -> int:
    """Parameters a tensor stands for: a packed 4-bit weight stores two values per byte, so its ``numel`` is half
    (or less, with another storage dtype) of the layer's real size, which its quant_state's shape gives."""
    qs = getattr(p, "quant_state", None)
    if qs is not None and getattr(qs, "shape", None) is not None:
        n = 1
        for d in qs.shape:
            n *= int(d)
        return n
    return p.numel()


def trainable_parameters(model) -> dict:
    """Trainable and total parameter counts (4-bit weights counted by their real shape, not their bytes)."""
    t = sum(parameter_count(p) for p in model.parameters() if p.requires_grad)
    a = sum(parameter_count(p) for p in model.parameters())
    return {"trainable_params": int(t), "all_params": int(a)}


def default_optimizer(device: str) -> str:
    """Paged 8-bit AdamW on CUDA (optimizer state paged to host under pressure); plain AdamW on CPU."""
    return "paged_adamw_8bit" if str(device).startswith("cuda") else "adamw_torch"
