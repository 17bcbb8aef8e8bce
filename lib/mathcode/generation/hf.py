"""``hf`` backend: a local transformers model, batched with left padding (CPU or CUDA, optional 4-bit / adapter)."""
from __future__ import annotations

from mathcode.generation.base import Completion, GenConfig, Generator, truncate_at_stop


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


class HFGenerator(Generator):
    """Local transformers model; batches sorted by length, left-padded, stop strings honoured."""
    backend = "hf"

    def __init__(self, model: str, *, device: str = "auto", quantize: str | None = None, adapter=None,
                 cache_dir=None, model_obj=None, tokenizer=None, threads: int | None = None):
        super().__init__(model)
        from mathcode import models
        if threads:                                   # CPU threads for torch (0/None: torch's default)
            import torch
            torch.set_num_threads(int(threads))
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


