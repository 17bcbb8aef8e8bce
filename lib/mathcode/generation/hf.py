"""``hf`` backend: a local transformers model, batched with left padding (CPU or CUDA, optional 4-bit / adapter)."""
from __future__ import annotations

from mathcode import cpu
from mathcode.generation.base import Completion, GenConfig, Generator, split_entry, truncate_at_stop


def special_prefix(tok) -> list[int]:
    """The token ids the tokenizer puts before any text by itself (e.g. ``[BOS]`` for Llama-3, ``[]`` for Qwen and
    SmolLM2), found by tokenizing a probe with and without special tokens; suffixes (EOS) are never taken."""
    probe = "Hello world"
    bare = tok(probe, add_special_tokens=False)["input_ids"]
    full = tok(probe, add_special_tokens=True)["input_ids"]
    k = len(full) - len(bare)
    for start in range(0, max(k, 0) + 1):            # locate the bare ids inside the full ones
        if full[start:start + len(bare)] == bare:
            return list(full[:start])
    return []


def encode_prompt(tok, prompt: str, prefix: list[int]) -> list[int]:
    """Ids for one prompt: the tokenizer's own prefix (BOS) unless the text already starts with it."""
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    if prefix and ids[:len(prefix)] != prefix:
        ids = list(prefix) + list(ids)
    return ids


# --- scoring (log-likelihood of given text; the evaluation's gold-solution NLL probe) ------------------------------
def scoring_prefix(tokenizer) -> list[int]:
    """Token ids the tokenizer itself puts before a text (BOS for Llama-3-style models, nothing for Qwen or
    SmolLM2): the scored sequence starts the way the model saw text in training."""
    full = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    n = len(full) - len(plain)
    return list(full[:n]) if n > 0 and full[n:n + len(plain)] == plain else []


def scoring_sequences(tokenizer, pairs: list, max_tokens: int = 768) -> list[tuple[list[int], int]]:
    """Per entry (a text or a (context, continuation) pair): (token ids to score, how many of the last ones are the
    continuation). Context and continuation are tokenized apart, the tokenizer's own prefix first; a sequence over
    ``max_tokens`` keeps its last tokens (and its first). Shared by every backend that scores, so they score the
    same tokens."""
    seqs = []
    prefix = scoring_prefix(tokenizer)
    for entry in pairs:
        context, continuation = split_entry(entry)
        ctx = prefix + (tokenizer(context, add_special_tokens=False)["input_ids"] if context else [])
        tgt = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        ids = (ctx + tgt)[-max_tokens:]
        if len(tgt) >= max_tokens:
            ids = ctx[:1] + tgt[-(max_tokens - 1):] if ctx else tgt[-max_tokens:]
        n_tgt = min(len(tgt), len(ids) - 1)
        seqs.append((ids, n_tgt))
    return seqs


def cpu_has_bf16() -> bool:
    """The CPU multiplies bf16 natively (AMX or AVX512-BF16 in /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def bf16_autocast(model, mode: str):
    """bf16 autocast for scoring forward passes: ``mode`` 'auto' (CPU with native bf16, unquantized model),
    'bf16' or 'fp32' (none). On CPUs with native bf16 (AMX) 1.8-2x faster than fp32, per-item NLL within ~1e-3 (bench/README.md)."""
    import contextlib

    import torch
    if mode not in ("auto", "bf16", "fp32"):
        raise ValueError(f"nll dtype={mode!r}: use 'auto', 'bf16' or 'fp32'")
    p = next(model.parameters())
    quantized = any(type(m).__name__ in ("Linear4bit", "Linear8bitLt") for m in model.modules())
    use = mode == "bf16" or (mode == "auto" and p.device.type == "cpu" and p.dtype == torch.float32
                             and not quantized and cpu_has_bf16())
    return torch.autocast(p.device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def score_pairs(model, tokenizer, pairs: list, *, batch_size: int = 8, max_tokens: int = 768,
                dtype: str = "auto") -> list[dict]:
    """Per entry (a text or a (context, continuation) pair): summed and mean NLL (nats/token) of the continuation.

    Batches of similar length, right-padded (positions stay 0..len-1); ``dtype``: 'auto' runs the forward passes
    under bf16 autocast on a CPU with native bf16 (unquantized model only), 'fp32' never, 'bf16' always;
    log-probabilities are taken in fp32 either way."""
    import torch
    device = next(model.parameters()).device
    seqs = scoring_sequences(tokenizer, pairs, max_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    # batches of similar length (little padding: hundreds of entries cost about their tokens, not batch x longest);
    # rows come back in the entries' order
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k][0]))
    by_pos: dict[int, dict] = {}
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        chunk = [seqs[k] for k in idx]
        L = max(len(p[0]) for p in chunk)
        ids = torch.full((len(chunk), L), pad, dtype=torch.long)
        att = torch.zeros((len(chunk), L), dtype=torch.long)
        for r, (seq, _) in enumerate(chunk):                     # right padding: positions stay 0..len-1
            ids[r, :len(seq)] = torch.tensor(seq)
            att[r, :len(seq)] = 1
        with torch.no_grad(), bf16_autocast(model, dtype):
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
        logits = logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        tok_lp = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for r, (seq, n_tgt) in enumerate(chunk):
            lp = tok_lp[r, len(seq) - 1 - n_tgt:len(seq) - 1]
            by_pos[idx[r]] = {"tokens": int(n_tgt), "nll_sum": float(-lp.sum()), "nll_mean": float(-lp.mean())}
    return [by_pos[k] for k in range(len(seqs))]


class HFGenerator(Generator):
    """Local transformers model; batches sorted by length, left-padded, stop strings honoured; scores text."""
    backend = "hf"
    can_score = True

    def __init__(self, model: str, *, device: str = "auto", quantize: str | None = None, adapter=None,
                 cache_dir=None, model_obj=None, tokenizer=None, threads: int | None = None):
        super().__init__(model)
        from mathcode import models
        cpu.set_torch_threads(threads)                # CPU threads for torch (0/None: torch's default; mathcode.cpu)
        self.tokenizer = tokenizer or models.load_tokenizer(model, cache_dir, padding_side="left")
        self.model = model_obj if model_obj is not None else models.load_model(
            model, quantize=quantize, device=device, cache_dir=cache_dir, adapter=adapter)
        self.device = next(self.model.parameters()).device
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self._prefix = special_prefix(self.tokenizer)

    def render_chat(self, messages):
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def nll(self, entries, *, batch_size: int = 8, max_tokens: int = 768, dtype: str = "auto") -> list[dict]:
        return score_pairs(self.model, self.tokenizer, list(entries), batch_size=batch_size, max_tokens=max_tokens,
                           dtype=dtype)

    def _generate(self, prompts, cfg):
        import torch
        tok = self.tokenizer
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[Completion | None] = [None] * len(prompts)
        eos = [t for t in {tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
               if t is not None]
        eos_ids = sorted({e for t in eos for e in (t if isinstance(t, list) else [t])})
        for b in range(0, len(order), max(1, cfg.batch_size)):
            idx = order[b:b + cfg.batch_size]
            ids = [encode_prompt(tok, prompts[i], self._prefix) for i in idx]
            enc = tok.pad({"input_ids": ids}, padding=True, return_tensors="pt").to(self.device)
            kw = dict(max_new_tokens=cfg.max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=eos_ids)
            if cfg.temperature and cfg.temperature > 0:
                torch.manual_seed(cfg.seed + b)
                kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
            else:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if cfg.stop:
                kw.update(stop_strings=list(cfg.stop), tokenizer=tok)
            with torch.no_grad():
                gen = self.model.generate(**enc, **kw)
            new = gen[:, enc["input_ids"].shape[1]:]
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                n = len(ids)
                while n and ids[n - 1] == tok.pad_token_id:        # drop right padding of finished rows
                    n -= 1
                hit_eos = n < len(ids) or (n and ids[n - 1] in eos_ids)
                text = tok.decode(ids[:n], skip_special_tokens=True)
                text, hit_stop = truncate_at_stop(text, cfg.stop)
                out[i] = Completion(text=text, prompt_tokens=int(enc["attention_mask"][row].sum()),
                                    completion_tokens=n,
                                    finish_reason="stop" if (hit_stop or hit_eos) else "length")
        return out


