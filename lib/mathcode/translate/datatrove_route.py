"""The cluster route for phase 2: the same passage → prompt → generation → parse → sandbox → verify steps,
run as a datatrove pipeline (as ``mathcode.data.datatrove_route`` does for phase 1).

    JsonlReader(corpus) → PassageSplitter → InferenceRunner(rollout = translate_rollout, sandbox per task)

* ``PassageSplitter`` cuts each corpus row into passage documents (``passages.split_document``).
* datatrove's ``InferenceRunner`` drives an OpenAI-compatible server (vLLM or SGLang that it starts itself on
  each GPU node, or an ``endpoint`` you run), keeps many requests in flight, and checkpoints finished chunks
  so that a killed Slurm task resumes where it stopped.
* ``translate_rollout`` is our step inside it: the kit's prompt, generated block by block (each round
  continues the assistant's reply with ``continue_final_message``, a vLLM/SGLang chat extension, and stops at
  the next block's header), parsed, run in a ``mathcode`` sandbox opened once per task (``shared_context``),
  and judged by ``verify.judge``. Each passage document leaves with ``metadata["translation"]`` = its reply
  and block records — the same rows ``translate.materialize`` writes, so ``translated_rows`` turns them into
  the phase's ``translated.jsonl``.

Local run (tested, ``tests/test_translate_datatrove.py``): ``LocalPipelineExecutor``. On Slurm, swap in
``SlurmPipelineExecutor`` with the same pipeline (docs/verification.md, "Translation on a cluster").
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from functools import partial

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from mathcode.translate import parse as _parse, passages as _passages, prompt as _prompt
from mathcode.translate.execution import open_sandbox
from mathcode.translate.generate import HEADER, NEXT_BLOCK_STOPS, add_round
from mathcode.translate.settings import TranslationSettings

_D = TranslationSettings.defaults()   # the splitter's defaults are the phase settings' (declared once there)


class PassageSplitter(PipelineStep):
    """Corpus documents in, one document per computation passage out (id ``doc#pK``)."""
    name = "mathcode passages"
    type = "🔢 - TRANSLATE"

    def __init__(self, max_passages_per_doc: int = _D["max_passages_per_doc"],
                 max_passage_chars: int = _D["max_passage_chars"], context_chars: int = _D["context_chars"],
                 unit: str = _D["passage_unit"]):
        super().__init__()
        self.kw = dict(max_passages=max_passages_per_doc, max_passage_chars=max_passage_chars,
                       context_chars=context_chars, unit=unit)

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("documents")
            row = {"id": doc.id, "text": doc.text, "source": doc.metadata.get("source", "")}
            meta = doc.metadata.get("meta") if isinstance(doc.metadata.get("meta"), dict) else {}
            for p in _passages.split_document(row, **self.kw):
                self.stat_update("passages")
                yield Document(text=p.text, id=p.id, metadata={"source": p.source, "doc_id": p.doc_id,
                                                               "original_id": str(meta.get("original_id") or doc.id),
                                                               "context": p.context, "kinds": p.kinds})


@contextmanager
def sandbox_context(workers: int = 1, isolation: str = "auto", timeout: float = 5.0, memory_mb: int = 1024):
    """``shared_context`` for InferenceRunner: one sandbox per datatrove task, closed when the task ends."""
    with open_sandbox(workers, isolation, timeout, memory_mb) as box:
        yield {"sandbox": box}


def _passage_of(document: Document) -> dict:
    m = document.metadata
    return {"id": document.id, "doc_id": m.get("doc_id", document.id), "original_id": m.get("original_id"),
            "source": m.get("source", ""),
            "text": document.text, "context": m.get("context", ""), "kinds": m.get("kinds", [])}


async def translate_rollout(document: Document, generate, sandbox=None, *, cfg=None, prefill: bool = True):
    """One passage: generate its reply block by block, then parse, execute and judge every block."""
    from mathcode.translate.translate import TranslateConfig, block_row, reply_level_row
    cfg = cfg or TranslateConfig()
    p = _passage_of(document)
    msgs = _prompt.build_messages(p["text"], cfg.instruction, worked_example=cfg.worked_example,
                                  max_blocks=cfg.max_blocks, focus=_prompt.focus_of(p))
    budget = cfg.block_tokens or max(32, cfg.gen.max_new_tokens // cfg.max_blocks)
    base = {"temperature": cfg.gen.temperature, "max_tokens": budget}
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    if prefill:
        reply, finish = HEADER, "stop"
        for r in range(cfg.max_blocks):
            lead = "\n\n" + HEADER if r else ""
            res = await generate({**base, "messages": msgs + [{"role": "assistant", "content": reply + lead}],
                                  "continue_final_message": True, "add_generation_prompt": False,
                                  "stop": NEXT_BLOCK_STOPS})
            for k in usage:
                usage[k] += int(res.usage.get(k, 0))
            reply, more = add_round(reply, res.text, r, res.finish_reason or "stop")
            finish = res.finish_reason or finish
            if not more:
                break
    else:
        res = await generate({**base, "messages": msgs, "max_tokens": budget * cfg.max_blocks})
        reply, finish, usage = res.text, res.finish_reason, dict(res.usage)
    parsed, err = _parse.parse_reply(reply)
    if err:
        blocks = [reply_level_row(p, err)]
    else:
        todo = parsed[: cfg.max_blocks]
        codes = [b.code for b in todo if not b.parse_error]
        runs = iter(await asyncio.to_thread(sandbox.run_many, codes) if codes else [])
        runs = [None if b.parse_error else next(runs) for b in todo]
        blocks = await asyncio.to_thread(lambda: [block_row(p, b, r, cfg, sandbox) for b, r in zip(todo, runs)])
    return {"passage": p, "reply": {"passage_id": p["id"], "doc_id": p["doc_id"],
                                    "original_id": p.get("original_id"), "text": reply,
                                    "finish_reason": finish, **usage}, "blocks": blocks}


def _row(self, doc: Document) -> dict:
    """Writer adapter: the rollout's record (passage, reply, blocks) as one JSONL row."""
    results = doc.metadata.get("rollout_results") or [{}]
    return {"id": doc.id, **(results[0] if isinstance(results[0], dict) else {"error": str(results[0])})}


def build_pipeline(corpus_folder: str, output_folder: str, *, server_type: str = "endpoint", model: str = "",
                   endpoint_url: str | None = None, cfg=None, checkpoints_dir: str | None = None,
                   sandbox_workers: int = 1, isolation: str = "auto", snippet_timeout: float = 5.0,
                   max_concurrent: int = 8, prefill: bool | None = None, glob_pattern: str = "*.jsonl",
                   records_per_chunk: int | None = None) -> list:
    """The phase-2 pipeline: read corpus JSONL, split passages, translate+verify, write one JSONL row per passage.

    ``server_type``: ``vllm``/``sglang`` (datatrove starts the server on the node from ``model``) or ``endpoint``
    (an OpenAI-compatible server whose root, without ``/v1``, is ``endpoint_url``). ``prefill`` (block-by-block
    rounds) needs the server to support ``continue_final_message``; default on for vllm/sglang, off for a
    generic endpoint (the kit's managed ``vllm serve`` is one: pass ``prefill=True``). ``checkpoints_dir``: each
    task keeps its finished rows there, ``records_per_chunk`` (default 50) per chunk, so a killed task resumes without
    redoing or losing a row.
    """
    from datatrove.pipeline.inference.run_inference import InferenceConfig, InferenceRunner
    from datatrove.pipeline.writers import JsonlWriter

    from mathcode.datatrove_io import reader
    from mathcode.translate.translate import TranslateConfig
    cfg = cfg or TranslateConfig()
    cfg.check()
    prefill = server_type in ("vllm", "sglang") if prefill is None else prefill
    config = InferenceConfig(server_type=server_type, model_name_or_path=model, endpoint_url=endpoint_url,
                             use_chat=True, max_concurrent_generations=max_concurrent, metric_interval=600,
                             default_generation_params={"temperature": cfg.gen.temperature})
    writer = JsonlWriter(output_folder, output_filename="${rank}_chunk_${chunk_index}.jsonl", compression=None,
                         adapter=_row)
    return [
        reader(corpus_folder, glob_pattern=glob_pattern),
        PassageSplitter(cfg.max_passages_per_doc, cfg.max_passage_chars, cfg.context_chars, cfg.passage_unit),
        InferenceRunner(rollout_fn=partial(translate_rollout, cfg=cfg, prefill=prefill), config=config,
                        output_writer=writer, checkpoints_local_dir=checkpoints_dir,
                        records_per_chunk=records_per_chunk or (50 if checkpoints_dir else 6000),
                        shared_context=partial(sandbox_context, sandbox_workers, isolation, snippet_timeout)),
    ]


def collect(output_folder) -> dict:
    """Read the pipeline's rows back as the phase's passages / replies / blocks lists (corpus order not kept)."""
    import json
    from pathlib import Path
    passages, replies, blocks = [], [], []
    for f in sorted(Path(output_folder).glob("*.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if "passage" in row:
                passages.append(row["passage"])
                replies.append(row["reply"])
                blocks += row["blocks"]
    return {"passages": passages, "replies": replies, "blocks": blocks}
