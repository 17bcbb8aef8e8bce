"""``llamacpp`` backend: llama.cpp in-process on a GGUF file, the CPU default for GGUF translators.

Why: on the demo's translation prompts it runs the embedded Qwen2.5-Coder-0.5B Q4_K_M GGUF several times faster
than transformers on the dequantized weights, and loads in seconds instead of a 1–2 min conversion
(bench/README.md). It uses llama-cpp-python's bindings (``pip install 'mathcode[llamacpp]'``, compiled at install).

What it does itself, on llama.cpp's low-level API:
  * chat template: the GGUF's own ``tokenizer.chat_template``, rendered with Jinja2 as transformers renders it
    (so ``render_chat`` shows the exact text the model sees, and ``hf`` and ``llamacpp`` see the same text);
  * BOS/special tokens: the vocabulary's ``add_bos`` flag, never doubled when the text already starts with BOS;
  * parallel slots: up to ``n_parallel`` sequences decode together in one batch (one sequence id per slot in one
    KV cache), new prompts enter as slots free up (continuous batching);
  * shared prompt prefix: the token prefix common to a call's prompts (translation prompts share the instruction
    and worked example, ~3/4 of their tokens) is computed once and its KV cells are shared by every slot;
  * greedy = argmax of the logits: the same prompts with the same ``n_parallel`` give the same text on every run;
    like batching in transformers, a different ``n_parallel`` can flip a near-tie token (the batch shape changes
    the order of float sums), so a run records its ``n_parallel``. Which neighbours share a step, the cache cells a
    slot gets and the drafts it checks also vary with the batch, and a passage's reply with them (seen on textbook
    passages batched two ways); ``batch_invariant=True`` decodes each prompt alone from an emptied cache (no shared
    prefix, no drafts), so its greedy text depends on the prompt only; sampling: temperature/top-p, per-request seed;
  * stops: end-of-generation tokens, ``max_new_tokens`` and stop strings (the text is cut before the stop);
  * threads: the kit's one policy (``mathcode.cpu.generation_threads``): given, ``$MATHCODE_THREADS``, or one per
    idle core — measured when the model loads and again at the start of every call (other work comes and goes
    within a phase; ``threads_per_call`` in ``info()`` counts the calls per thread count; 1 and 2 threads gave the
    same greedy text in the tests);
  * the shared prefix stays cached between calls (``keep_prefix``): translation asks block by block, so the same
    instruction + worked example opens every call, and only the part that changed is computed again;
  * scoring (``nll``): log-likelihood of given text from the logits of every position of one sequence, with the
    same (context, continuation) tokenization and truncation rule as ``hf`` (numbers differ from hf's by the
    quantized arithmetic only);
  * prompt-lookup decoding (``lookup_tokens`` > 0, greedy only; on CPU only as many draft tokens as fill a step up
    to ``step_tokens`` beside the running slots, because a CPU step costs about one token's compute per token in it):
    a slot proposes the tokens that followed the
    latest earlier occurrence of its last few tokens in its own prompt + reply (translations copy numbers,
    names and LaTeX from the passage), the batch checks them in the same forward pass, and every draft token up to
    the first that greedy decoding would not have chosen is kept — the text is greedy decoding's (up to the
    float-order caveat above), only cheaper when the drafts are right. Same idea as transformers'
    ``prompt_lookup_num_tokens`` and llama-cpp-python's ``LlamaPromptLookupDecoding``, which serve one sequence
    through the high-level ``Llama`` class; here it runs inside the multi-slot batch.
"""
from __future__ import annotations

from collections import deque

from mathcode import cpu
from mathcode.generation.base import Completion, GenConfig, Generator, split_entry, truncate_at_stop


def _import_llama_cpp():
    try:
        import llama_cpp
        from llama_cpp import _internals
    except ImportError as e:
        raise ImportError(
            "generation backend 'llamacpp' needs llama-cpp-python (compiled from source at install; needs cmake and "
            "a C++ compiler): pip install 'mathcode[llamacpp]' (from the checkout: pip install -e '.[llamacpp]'). "
            "Without it use backend='hf' (transformers on the dequantized GGUF; slower).") from e
    return llama_cpp, _internals


# Defaults chosen by bench/bench_translate.py (bench/README.md): translation prompts share ~520 tokens of
# instruction + worked example, replies copy numbers and names from the passage.
# Measured (bench/README.md, 1 thread, Qwen2.5-Coder-0.5B Q4_K_M): a decode step costs ~a fixed part plus ~one
# token's compute per token in the batch, and stops getting cheaper per token at ~8-16 tokens: slots fill a step
# with useful tokens, prompt-lookup drafts only fill what idle slots leave of ``step_tokens``.
DEFAULTS = {"n_parallel": 16, "lookup_tokens": 8, "step_tokens": 16, "docs_per_chunk": 16}


def render_template(template: str, messages: list[dict], *, bos_token: str = "", eos_token: str = "",
                    add_generation_prompt: bool = True) -> str:
    """Render a chat template the way transformers does (sandboxed Jinja2, trim/lstrip blocks)."""
    import json

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg):
        raise ValueError(f"chat template refused the conversation: {msg}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False: json.dumps(x, indent=indent,
                                                                                  ensure_ascii=ensure_ascii)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token=bos_token, eos_token=eos_token,
                                            add_generation_prompt=add_generation_prompt)


class _Slot:
    __slots__ = ("req", "ids", "fed", "out", "text_bytes", "rng", "done", "reason")

    def __init__(self, req: int, ids: list[int], seed: int | None):
        self.req, self.ids, self.fed = req, ids, 0
        self.out: list[int] = []
        self.text_bytes = b""
        self.rng = None if seed is None else __import__("numpy").random.default_rng(seed)
        self.done, self.reason = False, "length"


class LlamaCppGenerator(Generator):
    """llama.cpp on a GGUF spec (``embedded:…`` or a ``.gguf`` path), CPU by default."""
    backend = "llamacpp"
    can_score = True

    def __init__(self, model: str, *, n_parallel: int | None = None, n_ctx: int = 2048, threads: int | str | None = None,
                 n_batch: int = 512, n_gpu_layers: int = 0, cache_dir=None, device: str = "auto",
                 adapter=None, repack: bool = False, share_prefix: bool = True, keep_prefix: bool = True,
                 lookup_tokens: int | None = None, lookup_ngram: int = 3, step_tokens: int | None = None,
                 batch_invariant: bool = False, verbose: bool = False, **_ignored):
        super().__init__(model)
        if adapter:
            raise ValueError("backend 'llamacpp' does not apply PEFT adapters; evaluate adapters with backend='hf' "
                             "or 'vllm'")
        n_parallel = DEFAULTS["n_parallel"] if n_parallel is None else n_parallel
        lookup_tokens = DEFAULTS["lookup_tokens"] if lookup_tokens is None else lookup_tokens
        if int(n_parallel) < 1 or int(n_ctx) < 64:
            raise ValueError(f"llamacpp: n_parallel must be >= 1 and n_ctx >= 64 (got {n_parallel}, {n_ctx})")
        from mathcode.models import gguf_path
        self.path = gguf_path(model, cache_dir)             # assembles/verifies an embedded GGUF first
        llama_cpp, internals = _import_llama_cpp()
        self._lc = llama_cpp
        if not verbose:
            llama_cpp.llama_log_set(_silent_log(llama_cpp), None)
        llama_cpp.llama_backend_init()
        self.n_parallel, self.n_ctx, self.n_batch = int(n_parallel), int(n_ctx), int(n_batch)
        # the kit's one thread policy (mathcode.cpu): a count measured from idle cores is measured again at every
        # call, because other work comes and goes within a phase and a thread that waits for a busy core slows the
        # whole pool down
        self.threads, self.threads_source = cpu.generation_threads(threads)
        self.adaptive_threads = cpu.adaptive(self.threads_source)
        # batch_invariant: every prompt decoded alone, from an emptied cache, prompt in the same chunks, no drafts —
        # its greedy text is then a function of the prompt alone, not of the prompts batched beside it
        self.batch_invariant = bool(batch_invariant)
        self.share_prefix = bool(share_prefix) and not self.batch_invariant
        self.keep_prefix = bool(keep_prefix) and self.share_prefix
        self.lookup_tokens = 0 if self.batch_invariant else max(0, int(lookup_tokens))
        self.lookup_ngram = max(1, int(lookup_ngram))
        # drafts per slot = what is left of step_tokens after one token per running slot (0: no cap)
        self.step_tokens = max(0, int(DEFAULTS["step_tokens"] if step_tokens is None else step_tokens))
        if self.lookup_tokens + 1 > int(n_batch):
            raise ValueError(f"llamacpp: lookup_tokens={lookup_tokens} needs n_batch > lookup_tokens (got {n_batch})")
        self._cached_prefix: list[int] = []                # tokens whose KV the prefix sequence holds now
        self.lc_stats = {"calls": 0, "prefix_tokens_reused": 0, "prefix_tokens_computed": 0, "draft_tokens": 0,
                      "draft_accepted": 0, "decode_steps": 0, "thread_changes": 0}
        self.threads_per_call: dict[int, int] = {}        # threads -> calls run with them
        self._prefix_seq = self.n_parallel                  # extra sequence id holding the shared prompt prefix
        mp = llama_cpp.llama_model_default_params()
        mp.n_gpu_layers = int(n_gpu_layers)
        # llama.cpp's "extra buffer types" repack weights for AMX/AVX kernels; a -march=native build on a VM that
        # advertises AMX without enabling it dies with SIGILL there (seen on this project's machines), so they are
        # off unless asked for (repack=True).
        mp.use_extra_bufts = bool(repack)
        self._model = internals.LlamaModel(path_model=str(self.path), params=mp, verbose=verbose)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = self.n_ctx * self.n_parallel            # n_ctx tokens per slot
        cp.n_batch = cp.n_ubatch = self.n_batch
        cp.n_seq_max = self.n_parallel + 1
        if self.lookup_tokens:                             # room for the drafts of every slot in one step
            cp.n_ctx += self.n_parallel * (self.lookup_tokens + 1)
        cp.kv_unified = True                               # one cache, so slots can share the prefix's cells
        cp.n_threads = cp.n_threads_batch = self.threads
        cp.no_perf = True
        self._ctx = internals.LlamaContext(model=self._model, params=cp, verbose=verbose)
        self._batch = internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=self.n_parallel,
                                           verbose=verbose)
        self._vocab = self._model.vocab
        self.n_vocab = self._model.n_vocab()
        self.metadata = self._model.metadata()
        self.bos_id = self._model.token_bos()
        self.add_bos = bool(self._model.add_bos_token()) and self.bos_id >= 0
        self.chat_template = self.metadata.get("tokenizer.chat_template")

    # --- text <-> tokens ----------------------------------------------------------------------------
    def _detok(self, toks: list[int], special: bool = True) -> bytes:
        import ctypes
        out = b""
        buf = (ctypes.c_char * 256)()
        for t in toks:
            n = self._lc.llama_token_to_piece(self._vocab, self._lc.llama_token(t), buf, 256, 0, special)
            out += bytes(buf[:n]) if n > 0 else b""
        return out

    @property
    def bos_text(self) -> str:
        return self._detok([self.bos_id]).decode("utf-8", "ignore") if self.bos_id >= 0 else ""

    def encode(self, text: str) -> list[int]:
        """Token ids as the model expects them: special tokens in the text parsed, BOS added once when the
        vocabulary asks for it (``tokenizer.ggml.add_bos_token``) and the text does not already start with it."""
        ids = self._model.tokenize(text.encode("utf-8"), False, True)
        if self.add_bos and (not ids or ids[0] != self.bos_id):
            ids = [self.bos_id] + ids
        return ids

    def render_chat(self, messages: list[dict]) -> str:
        if not self.chat_template:
            raise ValueError(f"{self.path} has no chat template (tokenizer.chat_template); use complete() with "
                             f"your own prompt format")
        eos = self._model.token_eos()
        return render_template(self.chat_template, messages, bos_token=self.bos_text,
                               eos_token=self._detok([eos]).decode("utf-8", "ignore") if eos >= 0 else "")

    # --- decoding -----------------------------------------------------------------------------------
    def _next_token(self, slot: _Slot, logits, cfg: GenConfig) -> int:
        import numpy as np
        if slot.rng is None:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / max(float(cfg.temperature), 1e-6)
        p = np.exp(z - z.max())
        p /= p.sum()
        if cfg.top_p < 1.0:
            order = np.argsort(-p)
            keep = order[: int(np.searchsorted(np.cumsum(p[order]), cfg.top_p) + 1)]
            q = np.zeros_like(p)
            q[keep] = p[keep]
            p = q / q.sum()
        return int(slot.rng.choice(len(p), p=p))

    def _generate(self, prompts: list[str], cfg: GenConfig) -> list[Completion]:
        if self.batch_invariant:
            out = []
            for p in prompts:
                self._lc.llama_memory_clear(self._lc.llama_get_memory(self._ctx.ctx), True)
                out += self._generate_batch([p], cfg)
            return out
        return self._generate_batch(prompts, cfg)

    def _generate_batch(self, prompts: list[str], cfg: GenConfig) -> list[Completion]:
        """Continuous batching over ``n_parallel`` slots: each step fills one llama.cpp batch (``_fill_step``),
        decodes it, and reads each slot's next token(s) (``_read_step``); a finished slot takes the next prompt."""
        lc = self._lc
        encoded = [self.encode(p) for p in prompts]
        if cfg.max_new_tokens <= 0:
            return [Completion(text="", prompt_tokens=len(ids), finish_reason="length") for ids in encoded]
        self._refuse_overlong(encoded, cfg)
        self.lc_stats["calls"] += 1
        self._adapt_threads()
        sampling = bool(cfg.temperature and cfg.temperature > 0)
        lookup = 0 if sampling else self.lookup_tokens
        queue = deque(range(len(prompts)))
        free = list(range(self.n_parallel))[::-1]
        active: dict[int, _Slot] = {}
        results: list[Completion | None] = [None] * len(prompts)
        mem = lc.llama_get_memory(self._ctx.ctx)
        shared = self._prefill_prefix(encoded, mem) if self.share_prefix else 0
        try:
            while queue or active:
                while queue and free:
                    i = queue.popleft()
                    seq = free.pop()
                    active[seq] = _Slot(i, encoded[i], cfg.seed + i if sampling else None)
                    if shared:
                        lc.llama_memory_seq_cp(mem, self._prefix_seq, seq, 0, shared)
                        active[seq].fed = shared
                want = self._fill_step(active, lookup, cfg)
                rc = lc.llama_decode(self._ctx.ctx, self._batch.batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode returned {rc} (KV cache full? n_ctx={self.n_ctx}, "
                                       f"n_parallel={self.n_parallel})")
                self.lc_stats["decode_steps"] += 1
                for seq in self._read_step(want, active, cfg, mem):
                    s = active.pop(seq)
                    text, _ = truncate_at_stop(s.text_bytes.decode("utf-8", "replace"), cfg.stop)
                    results[s.req] = Completion(text=text, prompt_tokens=len(s.ids),
                                                completion_tokens=len(s.out), finish_reason=s.reason)
                    lc.llama_memory_seq_rm(mem, seq, -1, -1)
                    free.append(seq)
        finally:
            for seq in list(active):
                lc.llama_memory_seq_rm(mem, seq, -1, -1)
            if shared and not self.keep_prefix:
                lc.llama_memory_seq_rm(mem, self._prefix_seq, -1, -1)
                self._cached_prefix = []
        return results

    def _refuse_overlong(self, encoded: list[list[int]], cfg: GenConfig) -> None:
        """Refuse before any decoding: a prompt that cannot fit its reply in one slot's context would fail midway."""
        for i, ids in enumerate(encoded):
            if len(ids) + cfg.max_new_tokens > self.n_ctx:
                raise ValueError(f"llamacpp: prompt {i} has {len(ids)} tokens + max_new_tokens "
                                 f"{cfg.max_new_tokens} > n_ctx {self.n_ctx} per slot; raise n_ctx")

    def _adapt_threads(self) -> None:
        """Re-measure the idle cores at the start of a call (``threads=0``): other work comes and goes in a phase."""
        if self.adaptive_threads:
            n, self.threads_source = cpu.idle_cores(0.2)
            if n != self.threads:
                self._ctx.set_n_threads(n, n)
                self.threads = n
                self.lc_stats["thread_changes"] += 1
        self.threads_per_call[self.threads] = self.threads_per_call.get(self.threads, 0) + 1

    def _fill_step(self, active: dict[int, _Slot], lookup: int, cfg: GenConfig) -> list[tuple[int, int, list[int]]]:
        """Fill one batch (within ``n_batch``): the last token of each running slot with its draft tokens, then a
        prompt chunk per slot still being fed. Returns (seq, first batch row whose logits it needs, drafts)."""
        b = self._batch.batch
        b.n_tokens = 0
        want: list[tuple[int, int, list[int]]] = []
        budget = self.n_batch
        running = sum(1 for s in active.values() if s.fed >= len(s.ids))
        per_slot = lookup if not self.step_tokens else \
            min(lookup, max(0, (self.step_tokens - running) // max(1, running)))
        for seq, s in sorted(active.items()):
            if s.fed < len(s.ids) or budget <= 0:
                continue
            pos = len(s.ids) + len(s.out) - 1
            draft = self._draft(s, min(per_slot, budget - 1, cfg.max_new_tokens - len(s.out) - 1)) \
                if per_slot else []
            row = b.n_tokens
            self._add(b, s.out[-1], pos, seq, True)
            for k, t in enumerate(draft, 1):
                self._add(b, t, pos + k, seq, True)
            want.append((seq, row, draft))
            budget -= 1 + len(draft)
        for seq, s in sorted(active.items()):
            if s.fed >= len(s.ids) or budget <= 0:
                continue
            take = min(budget, len(s.ids) - s.fed)
            for k in range(take):
                last = s.fed + k == len(s.ids) - 1
                self._add(b, s.ids[s.fed + k], s.fed + k, seq, last)
            s.fed += take
            budget -= take
            if s.fed == len(s.ids):
                want.append((seq, b.n_tokens - 1, []))
        return want

    def _read_step(self, want, active: dict[int, _Slot], cfg: GenConfig, mem) -> list[int]:
        """Take each slot's next token from the decoded batch, keeping the drafts greedy decoding confirms (in
        order, up to the first it would not have chosen) and forgetting the cache cells of the rest. Returns the
        sequence ids of the slots that finished."""
        import numpy as np
        lc = self._lc
        done = []
        for seq, row, draft in want:
            s = active[seq]
            kept = 0
            for k in range(len(draft) + 1):
                logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx.ctx, row + k), shape=(self.n_vocab,))
                tok = self._next_token(s, logits, cfg)
                self._emit(s, tok, cfg)
                if s.done or k == len(draft) or tok != draft[k]:
                    break
                kept += 1
            if draft:
                self.lc_stats["draft_tokens"] += len(draft)
                self.lc_stats["draft_accepted"] += kept
                if kept < len(draft) and not s.done:
                    lc.llama_memory_seq_rm(mem, seq, len(s.ids) + len(s.out) - 1, -1)
            if s.done:
                done.append(seq)
        return done

    # --- scoring ------------------------------------------------------------------------------------------------
    def nll(self, entries, *, batch_size: int = 8, max_tokens: int = 768, dtype: str = "auto") -> list[dict]:
        """``Generator.nll`` on llama.cpp: one sequence at a time (slot 0's cells, free between calls), logits of
        the positions that predict continuation tokens only; log-softmax in float64. ``batch_size`` and ``dtype``
        do not apply (the GGUF's own types). A sequence longer than ``n_ctx`` keeps its last ``n_ctx`` tokens."""
        import numpy as np
        lc = self._lc
        max_tokens = min(int(max_tokens), self.n_ctx)
        prefix = [self.bos_id] if self.add_bos else []
        mem = lc.llama_get_memory(self._ctx.ctx)
        b = self._batch.batch
        seq = 0
        out = []
        for entry in entries:
            context, continuation = split_entry(entry)
            ctx = prefix + (self._model.tokenize(context.encode("utf-8"), False, True) if context else [])
            tgt = self._model.tokenize(continuation.encode("utf-8"), False, True)
            ids = (ctx + tgt)[-max_tokens:]
            if len(tgt) >= max_tokens:
                ids = ctx[:1] + tgt[-(max_tokens - 1):] if ctx else tgt[-max_tokens:]
            n_tgt = min(len(tgt), len(ids) - 1)
            first = len(ids) - 1 - n_tgt                   # logits at first..len-2 predict the scored tokens
            lps = []
            lc.llama_memory_seq_rm(mem, seq, -1, -1)
            try:
                for start in range(0, len(ids), self.n_batch):
                    b.n_tokens = 0
                    rows = []
                    for pos in range(start, min(len(ids), start + self.n_batch)):
                        want = first <= pos < len(ids) - 1
                        if want:
                            rows.append((b.n_tokens, ids[pos + 1]))
                        self._add(b, ids[pos], pos, seq, want)
                    rc = lc.llama_decode(self._ctx.ctx, b)
                    if rc != 0:
                        raise RuntimeError(f"llama_decode returned {rc} while scoring (n_ctx={self.n_ctx})")
                    for row, nxt in rows:
                        z = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx.ctx, row),
                                                  shape=(self.n_vocab,)).astype(np.float64)
                        m = z.max()
                        lps.append(z[nxt] - m - np.log(np.exp(z - m).sum()))
            finally:
                lc.llama_memory_seq_rm(mem, seq, -1, -1)
            lp = np.array(lps, dtype=np.float64)
            out.append({"tokens": int(n_tgt), "nll_sum": float(-lp.sum()),
                        "nll_mean": float(-lp.mean()) if n_tgt else float("nan")})
        return out

    def _emit(self, s: _Slot, tok: int, cfg: GenConfig) -> None:
        """Append one generated token to a slot and apply the stop rules (end-of-generation, stop strings,
        ``max_new_tokens``)."""
        if self._lc.llama_vocab_is_eog(self._vocab, tok):
            s.done, s.reason = True, "stop"
            return
        s.out.append(tok)
        s.text_bytes += self._detok([tok], special=False)
        if cfg.stop and truncate_at_stop(s.text_bytes.decode("utf-8", "ignore"), cfg.stop)[1]:
            s.done, s.reason = True, "stop"
        elif len(s.out) >= cfg.max_new_tokens:
            s.done = True

    def _draft(self, s: _Slot, k: int) -> list[int]:
        """Prompt lookup: up to ``k`` tokens that followed the latest earlier occurrence of the slot's last
        ``lookup_ngram`` tokens (then shorter n-grams, down to 2) in its prompt + reply; [] when none."""
        if k <= 0:
            return []
        hist = s.ids + s.out
        for n in range(self.lookup_ngram, 1, -1):
            if len(hist) <= n:
                continue
            tail = hist[-n:]
            for j in range(len(hist) - n - 1, -1, -1):
                if hist[j:j + n] == tail:
                    return hist[j + n:j + n + k]
        return []

    def _prefill_prefix(self, encoded: list[list[int]], mem) -> int:
        """Make the prefix sequence hold the prompts' common token prefix; returns its length (0: none).

        One prompt alone shares its text up to its last token with itself, so a single prompt also reuses what an
        earlier call computed. Only the part beyond what the cache already holds (``keep_prefix``) is decoded.
        Every prompt keeps at least one token of its own, whose logits start its reply."""
        n = min(len(x) for x in encoded) - 1
        first = encoded[0]
        k = 0
        while k < n and all(x[k] == first[k] for x in encoded):
            k += 1
        cached = self._cached_prefix
        m = 0
        while m < min(k, len(cached)) and cached[m] == first[m]:
            m += 1
        if k < 16 or (len(encoded) == 1 and not (self.keep_prefix and m >= 16)):
            return 0                                         # nothing worth sharing (a lone prompt: no cache hit)
        if len(encoded) == 1:
            k = m                                            # a lone prompt reuses the cached part only
        lc = self._lc
        if m < len(cached):
            lc.llama_memory_seq_rm(mem, self._prefix_seq, m, -1)
        b = self._batch.batch
        for start in range(m, k, self.n_batch):
            b.n_tokens = 0
            for pos in range(start, min(k, start + self.n_batch)):
                self._add(b, first[pos], pos, self._prefix_seq, False)
            rc = lc.llama_decode(self._ctx.ctx, b)
            if rc != 0:
                self._cached_prefix = []
                lc.llama_memory_seq_rm(mem, self._prefix_seq, -1, -1)
                raise RuntimeError(f"llama_decode returned {rc} while computing the shared prompt prefix")
        self.lc_stats["prefix_tokens_reused"] += m
        self.lc_stats["prefix_tokens_computed"] += k - m
        self._cached_prefix = list(first[:k])
        return k

    @staticmethod
    def _add(b, tok: int, pos: int, seq: int, logits: bool):
        j = b.n_tokens
        b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = tok, pos, 1, bool(logits)
        b.seq_id[j][0] = seq
        b.n_tokens = j + 1

    def info(self) -> dict:
        return {**super().info(), "gguf": str(self.path), "n_parallel": self.n_parallel, "threads": self.threads,
                "threads_source": self.threads_source, "adaptive_threads": self.adaptive_threads,
                "threads_per_call": dict(self.threads_per_call), "n_ctx_per_slot": self.n_ctx,
                "share_prefix": self.share_prefix, "keep_prefix": self.keep_prefix,
                "lookup_tokens": self.lookup_tokens, "lookup_ngram": self.lookup_ngram, "step_tokens": self.step_tokens,
                "batch_invariant": self.batch_invariant,
                **self.lc_stats}

    def close(self):
        for obj in ("_batch", "_ctx", "_model"):
            o = getattr(self, obj, None)
            if o is not None:
                o.close()
                setattr(self, obj, None)


def _silent_log(llama_cpp):
    """A log callback that drops llama.cpp's load chatter (kept alive on the module so it is not collected)."""
    cb = getattr(llama_cpp, "_mathcode_silent_log", None)
    if cb is None:
        cb = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp._mathcode_silent_log = cb
    return cb
