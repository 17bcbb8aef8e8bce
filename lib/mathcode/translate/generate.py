"""Ask the translator for blocks one at a time, so that a reply never ends half-way through a block.

Measured with Qwen2.5-Coder-0.5B on the demo passages: with one free-running reply per passage
most losses were format losses — the reply stopped after the result header, or ``max_new_tokens`` cut the
second block in the middle of its code. So each block gets its own round and its own token budget:

* the assistant turn is *prefilled* with the first header (``**Conditions Needed:**``), which pins the
  format the parser reads, whatever headers the model would have drifted to;
* the round stops at the next block's header (a stop string), i.e. exactly where a block is complete;
* a further round (up to ``max_blocks``) continues the same reply from there, with a fresh budget;
* a round that hits the budget only loses its own block, never the blocks before it;
* a block that ends after its result (the model stops before the code: seen often from Qwen2.5-Coder-0.5B)
  gets one more call with the code header and fence prefilled, stopping at the closing fence.

Prefilling needs the exact prompt text (``render_chat`` + ``complete``): backends that render the chat
template themselves (hf, llamacpp, vllm, an OpenAI server whose tokenizer is named), or a server that continues
the assistant's message itself (``continue_final_message``: vLLM/SGLang, e.g. the kit's managed ``vllm serve``;
the conversation is sent with the prefilled assistant turn last, so the server's own chat template is used and
no tokenizer is needed on this side). Other servers get
one ``chat`` call with stop-free generation and ``max_blocks × block_tokens`` tokens; the parser still
reads that reply block by block.
"""
from __future__ import annotations

import re
from dataclasses import replace

from mathcode.generation import Completion, GenConfig

HEADER = "**Conditions Needed:**"
NEXT_BLOCK_STOPS = ["Conditions Needed"]
CODE_LEAD = "\n\n**Python Code Snippet:**\n```python\n"
_TAIL = re.compile(r"\s*(?:\*\*|__|#{1,6}|\d+[.)])?\s*$")


def can_prefill(gen) -> bool:
    """Whether ``gen`` shows us the exact prompt text (so an assistant prefix can be appended)."""
    if getattr(gen, "backend", "") in ("hf", "llamacpp", "vllm") or continues_chat(gen):
        return True
    return bool(getattr(gen, "_tokenizer_spec", None))


def continues_chat(gen) -> bool:
    """Whether ``gen`` continues a conversation's final assistant message server-side (``continue_chat``)."""
    return bool(getattr(gen, "continue_final_message", False)) and hasattr(gen, "continue_chat")


def _continue(gen, conversations, prompts, idx, leads, cfg):
    """One round: continue each reply ``leads[k]`` of conversation ``idx[k]`` (text returned: the continuation)."""
    if continues_chat(gen):
        return gen.continue_chat([conversations[i] + [{"role": "assistant", "content": lead}]
                                  for i, lead in zip(idx, leads)], cfg)
    return gen.complete([prompts[i] + lead for i, lead in zip(idx, leads)], cfg)


def generate_replies(gen, conversations: list[list[dict]], cfg: GenConfig, max_blocks: int = 2,
                     block_tokens: int = 0, prefill: bool | None = None) -> list[Completion]:
    """One reply per conversation, written block by block (see the module docstring).

    ``block_tokens`` is the budget of one block (0: ``cfg.max_new_tokens`` split over ``max_blocks``).
    The returned text starts with the prefilled header, so it parses like an unconstrained reply.
    """
    if not conversations:
        return []
    budget = block_tokens or max(32, cfg.max_new_tokens // max(1, max_blocks))
    prefill = can_prefill(gen) if prefill is None else prefill
    if not prefill:
        comps = gen.chat(conversations, replace(cfg, max_new_tokens=budget * max_blocks))
        return comps
    prompts = None if continues_chat(gen) else [gen.render_chat(c) for c in conversations]
    n = len(conversations)
    texts = [HEADER] * n
    tokens = [0] * n
    prompt_tokens = [0] * n
    reasons = ["stop"] * n
    active = list(range(n))
    round_cfg = replace(cfg, max_new_tokens=budget, stop=list(dict.fromkeys([*cfg.stop, *NEXT_BLOCK_STOPS])))
    for r in range(max(1, max_blocks)):
        if not active:
            break
        lead = "\n\n" + HEADER if r else ""                 # a further round starts the next block itself
        outs = _continue(gen, conversations, prompts, active, [texts[i] + lead for i in active], round_cfg)
        still, need_code = [], []
        for i, c in zip(active, outs):
            tokens[i] += c.completion_tokens
            prompt_tokens[i] = prompt_tokens[i] or c.prompt_tokens
            texts[i], more = add_round(texts[i], c.text, r, c.finish_reason, bool(c.error))
            reasons[i] = c.finish_reason if c.text.strip() or not r else reasons[i]
            if needs_code(c.text, c.finish_reason, bool(c.error)):
                need_code.append(i)
            elif more:
                still.append(i)
        if need_code:                                        # the block stopped after its result: ask for the code
            outs = _continue(gen, conversations, prompts, need_code, [texts[i] + CODE_LEAD for i in need_code],
                             replace(round_cfg, stop=["```"]))
            for i, c in zip(need_code, outs):
                tokens[i] += c.completion_tokens
                texts[i] += CODE_LEAD + c.text.rstrip() + "\n```"
                reasons[i] = c.finish_reason
                if c.finish_reason == "stop" and not c.error and c.text.strip():
                    still.append(i)
            still.sort()
        active = still
    return [Completion(text=texts[i].rstrip(), prompt_tokens=prompt_tokens[i], completion_tokens=tokens[i],
                       finish_reason=reasons[i]) for i in range(n)]


def needs_code(generated: str, finish_reason: str, failed: bool = False) -> bool:
    """A round that ended on its own (not at the budget) after stating a result but before any code."""
    return (finish_reason == "stop" and not failed and "```" not in generated
            and re.search(r"computation\s+result", generated, re.I) is not None
            and re.search(r"python\s+code", generated, re.I) is None)


def add_round(reply: str, generated: str, round_index: int, finish_reason: str, failed: bool = False) -> tuple[str, bool]:
    """Append one round's text to the reply; True when another round may follow.

    Another round follows only a block that ended at the next header with its code fence closed — not one
    cut by the budget, not a failed request, not an empty round (the model had nothing more to add)."""
    body = _TAIL.sub("", generated)                          # the next header's "**" / "###" / "2." prefix
    if round_index and not body.strip():
        return reply, False
    reply += body if not round_index else "\n\n" + HEADER + body
    return reply, finish_reason == "stop" and not failed and generated.count("```") >= 2
