"""The steps notebook 02 calls, one function per cell, so that the notebook reads as a protocol.

``configure`` checks every parameter before anything expensive; ``open_translator`` picks the generation
backend (the kit's registry does the dispatch); ``translate_passages`` owns the sandbox lifecycle and the
resumable loop (with a progress bar over passages); ``metrics`` gathers what ``phase.json`` records.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mathcode.generation import GenConfig
from mathcode.util import write_json
from mathcode.translate.settings import TranslationSettings
from mathcode.translate import prompt as _prompt, translate as T
from mathcode.translate.execution import open_sandbox

def configure(settings=None, **values) -> T.TranslateConfig:
    """The engine's ``TranslateConfig`` from the phase's settings (``P.settings`` in the notebook), or from keyword
    parameters checked the same way (names that are not translation settings are ignored, so ``**P.values`` works);
    an error names the parameter and what to write."""
    if settings is None:
        names = set(TranslationSettings.names())
        settings = TranslationSettings.build({k: v for k, v in values.items() if k in names})
    S = settings
    # Already checked by TranslationSettings.build (or by whoever built ``settings``): no second check here.
    return T.TranslateConfig.from_settings(
        S, instruction=_prompt.load_instruction(S.prompt_file),
        gen=GenConfig(max_new_tokens=S.max_new_tokens, temperature=float(S.temperature),
                      batch_size=1 if S.batch_invariant else S.batch_size, seed=S.seed))


def corpus_path(phase, corpus_file: str = "") -> Path:
    """``corpus_file`` when given (must exist), else phase 1's corpus (a clear error when phase 1 has not run);
    recorded as an input of the phase (hashed in its manifest)."""
    from mathcode import paths
    path = paths.resolve_path(corpus_file) if corpus_file else phase.require("data", "corpus.jsonl")
    phase.add_input(path)
    return path


def source_table(docs: list[dict], cfg: T.TranslateConfig) -> pd.DataFrame:
    """Documents per source and how many of them carry at least one computation passage."""
    rows = [{"source": d["source"], "has_passage": bool(cfg.split(d))} for d in docs]
    if not rows:
        return pd.DataFrame(columns=["source", "documents", "with_passages"])
    return (pd.DataFrame(rows).groupby("source")["has_passage"].agg(documents="size", with_passages="sum")
            .reset_index())


def selection_summary(sel: dict) -> str:
    """One sentence on what was selected — and what to do when the corpus holds no computation at all."""
    if not sel.get("passages_selected"):
        return ("No passages found: no document in the corpus carries out a computation with a stated result "
                "(LaTeX or arithmetic such as 3*4 = 12). The outputs below are written empty (but valid); "
                "point corpus_file at math text with worked computations.")
    return "; ".join(selection_lines(sel))


def selection_lines(sel: dict) -> list[str]:
    """What the corpus contains, what the settings let through, what was selected, and which setting limited
    it (with the value to change), so that "12 passages" never reads as "all there were" when a cap cut it."""
    contain = sel.get("documents_with_computations", sel["documents_with_passages"])
    lines = [f"{contain} of {sel['documents']} documents contain computations "
             f"({sel.get('passages_in_corpus', sel['passages_selected'])} passages in all)"]
    if sel.get("passage_selection") == "translatable":
        lines.append(f"{sel['documents_with_passages']} of them passed the translatable score "
                     f"(min_passage_score {sel.get('min_passage_score')})")
    per_doc = sel.get("max_passages_per_doc")
    if per_doc is not None and sel.get("passages_available") is not None:
        lines.append(f"{sel['passages_available']} passages can be translated at max_passages_per_doc {per_doc}")
    lines.append(f"{sel['documents_selected']} documents selected ({sel['passages_selected']} passages"
                 + (f", max_passages {sel['max_passages']})" if sel.get("max_passages") else ", max_passages 0: all)"))
    why = {"max_passages": "max_passages (raise it to translate more)",
           "min_passage_score": "the translatable score (lower min_passage_score, or passage_selection: order)",
           "max_passages_per_doc": f"max_passages_per_doc {per_doc}: {sel.get('documents_capped_per_doc', 0)} "
                                   f"documents hold more passages (raise it to cut more from each)"}
    limits = sel.get("limited_by") or []
    lines.append("limited by " + " and by ".join(why[k] for k in limits) if limits
                 else "nothing limited the selection: every passage the corpus holds")
    return lines


def first_passage(selected: list[dict], cfg: T.TranslateConfig) -> dict:
    """The first passage the model will see (the worked example's passage when there is none)."""
    ps = [p.to_dict() for d in selected[:1] for p in cfg.split(d)]
    return ps[0] if ps else {"id": "example", "text": _prompt.EXAMPLE_PASSAGE, "context": ""}


def open_translator(backend: str, model: str, *, needed: bool | int = True, device="auto", quantize="", threads=0,
                    base_url="", api_key_env="", concurrency=4, timeout=300.0, batch_invariant=False, serve="",
                    serve_args=""):
    """The generation backend for the translator model, or None when there is nothing to translate.

    ``backend``: a registered name (hf, llamacpp, openai, vllm) or ``auto`` (llama.cpp for GGUF models on
    CPU where installed, else transformers). Only the settings that backend declares are passed on
    (``generation.registry.SETTINGS``, the one mapping shared with evaluation). ``batch_invariant``: llama.cpp
    decodes each prompt alone (hf gets it through ``configure``'s batch size of 1). ``serve="vllm"`` (openai
    backend): the backend starts ``vllm serve`` for the model and stops it when closed.
    """
    if not needed:
        return None
    from mathcode import generation
    # ``needed`` may be the number of passages to translate: ``auto`` weighs a server's start against it
    expected = None if isinstance(needed, bool) else int(needed)
    return generation.from_settings(backend, model, expected_prompts=expected, device=device,
                                    quantize=quantize or None,
                                    threads=int(threads) or None, base_url=base_url, api_key_env=api_key_env,
                                    concurrency=int(concurrency), timeout=float(timeout),
                                    batch_invariant=bool(batch_invariant) or None, serve=serve or None,
                                    serve_args=serve_args or None)


def show_prompt(gen, cfg: T.TranslateConfig, passage: dict) -> str:
    """The exact text the model sees for one passage (its chat template applied when the backend knows it)."""
    msgs = _prompt.build_messages(passage["text"], cfg.instruction, worked_example=cfg.worked_example,
                                  max_blocks=cfg.max_blocks, focus=_prompt.focus_of(passage))
    return gen.render_chat(msgs) if gen else "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in msgs)


def translate_passages(selected: list[dict], gen, out_dir, cfg: T.TranslateConfig, *, model: str = "",
                       sandbox_workers: int = 2, isolation: str = "auto", snippet_timeout: float = 5.0,
                       snippet_memory_mb: int = 1024) -> dict:
    """Generate, parse, run and verify every selected passage of this shard, resuming what is recorded.

    The sandbox is opened and always closed here; a run that stops before all chunks are recorded raises
    (rerun to resume) instead of writing partial outputs as if complete. Returns stats, counts, sandbox info.
    """
    from mathcode.progress import bar as progress_bar
    out_dir = Path(out_dir)
    total = T.count_passages(T.shard_docs(selected, cfg), cfg)
    with open_sandbox(sandbox_workers, isolation, snippet_timeout, snippet_memory_mb) as box, \
            progress_bar(total=total, unit="passage", desc="translating") as bar:
        info = box.info()
        stats = T.run(selected, gen, box, out_dir, cfg, progress=None, bar=bar) if selected else \
            {"complete": True, "chunks_run": 0, "resumed_docs": 0, "gen_seconds": 0.0, "exec_seconds": 0.0,
             "executions": 0, "completion_tokens": 0}
        sandbox_stats = dict(getattr(box, "stats", {}))
    if not stats["complete"]:
        raise RuntimeError("translation stopped before all chunks were done; rerun to resume")
    counts = T.materialize(selected, out_dir, cfg, model=model)
    write_json(out_dir / "sandbox.json", {**info, **sandbox_stats})
    return {"stats": stats, "counts": counts, "sandbox": info}


def close_translator(gen) -> dict:
    """Free the model; returns the backend's own statistics (requests, tokens, seconds)."""
    if gen is None:
        return {}
    info = gen.info()
    gen.close()
    return info


def metrics(selection: dict, result: dict, gen, *, backend: str, model: str, shard: str, wall_seconds: float) -> dict:
    """What ``phase.json`` records for this run (yield, speed, isolation)."""
    c, s = result["counts"], result["stats"]
    n = c["passages"]
    return dict(documents=selection["documents"],
                documents_with_computations=selection.get("documents_with_computations"),
                documents_with_passages=selection["documents_with_passages"],
                passages_in_corpus=selection.get("passages_in_corpus"),
                selection_limited_by=selection.get("limited_by", []),
                passages=n, blocks=c["blocks"], verified_blocks=c["verified_blocks"],
                passages_with_verified_block=c["translated_rows"], translated_rows=c["translated_rows"],
                rejected_rows=c["rejected_rows"],
                yield_verified_per_passage=round(c["verified_blocks"] / n, 3) if n else 0.0,
                share_of_passages_verified=round(c["translated_rows"] / n, 3) if n else 0.0,
                isolation=result["sandbox"]["isolation"], backend=getattr(gen, "backend", backend), model=model,
                generation_tokens_per_s=round(s["completion_tokens"] / s["gen_seconds"], 2) if s["gen_seconds"] else 0.0,
                executions_per_s=round(s["executions"] / s["exec_seconds"], 1) if s["exec_seconds"] else 0.0,
                shard=shard, shards_present=c["shards_present"], wall_seconds=round(wall_seconds, 1))
