"""The resumable, sharded driver with the real embedded model and the real sandbox."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mathcode.translate import translate as T

EMB = "embedded:smollm2-135m-instruct"
OUTPUTS = ["passages.jsonl", "replies.jsonl", "blocks.jsonl", "rejected.jsonl", "translated.jsonl"]


def _corpus(path: Path, n: int = 4) -> Path:
    rows = [{"id": f"doc-{i}", "source": "arith" if i % 2 else "word",
             "text": f"A box holds {i + 3} pens.\n\nSo {i + 2} boxes hold {i + 3}*{i + 2} = {(i + 3) * (i + 2)} pens."}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SCRIPT = textwrap.dedent("""
    import sys
    from mathcode.generation import make_generator, GenConfig
    from mathcode.translate import translate as T
    from mathcode.sandbox import Sandbox
    docs = T.load_corpus(sys.argv[1])
    cfg = T.TranslateConfig(max_passages_per_doc=1, docs_per_chunk=1, worked_example=False, context_chars=200,
                            gen=GenConfig(max_new_tokens=int(sys.argv[3]), batch_size=4))
    g = make_generator("hf", model="%s", device="cpu")
    with Sandbox(workers=1) as sb:
        T.run(docs, g, sb, sys.argv[2], cfg, progress=None)
    T.materialize(docs, sys.argv[2], cfg)
""" % EMB)


def test_partial_last_record_is_dropped(tmp_path):
    f = tmp_path / "work" / "records.shard-0-of-1.jsonl"
    f.parent.mkdir()
    f.write_text('{"chunk": "0-0", "doc_ids": ["a"]}\n{"chunk": "0-1", "doc_ids": ["b"')
    assert [r["doc_ids"] for r in T.read_records(f)] == [["a"]]
    assert f.read_text().endswith("}\n")


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    corpus = _corpus(tmp_path / "corpus.jsonl", 2)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    subprocess.run([sys.executable, str(script), str(corpus), str(ref), "10"], check=True, env=env, timeout=300)

    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(resumed), "10"], env=env)
    rec = T.records_path(resumed, 0, 1)
    deadline = time.time() + 240
    while time.time() < deadline and not (rec.exists() and rec.read_text().count("\n") >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = rec.read_text().count("\n")
    assert n_done == 1, "killed after the first chunk and before the last"
    assert not (resumed / "translated.jsonl").exists(), "nothing was materialized by the killed run"

    subprocess.run([sys.executable, str(script), str(corpus), str(resumed), "10"], check=True, env=env, timeout=300)
    for name in OUTPUTS:
        assert _without_timings(ref / name) == _without_timings(resumed / name), name
    assert len(T.read_records(rec)) == 2


def _without_timings(path):
    """A JSONL file's rows in order, less the fields that time a step (``*_seconds``, e.g. the judge's wall time):
    a resumed run must write the same rows, while how long a step took is measured afresh on every run."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]


@pytest.fixture(scope="module")
def gen():
    import torch
    from mathcode.generation import make_generator
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # one thread: no oversubscription when other processes share the cores
    g = make_generator("hf", model=EMB, device="cpu")
    yield g
    g.close()
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_shards_are_disjoint_merge_without_duplicates_and_rerun_skips(tmp_path, gen):
    from mathcode.generation import GenConfig
    from mathcode.sandbox import Sandbox
    docs = T.load_corpus(_corpus(tmp_path / "c.jsonl", 4))
    out = tmp_path / "out"
    seen = []
    with Sandbox(workers=1) as sb:
        for k in range(2):
            cfg = T.TranslateConfig(max_passages_per_doc=1, docs_per_chunk=2, worked_example=False, shard_index=k,
                                    num_shards=2, gen=GenConfig(max_new_tokens=8, batch_size=4))
            st = T.run(docs, gen, sb, out, cfg, progress=None)
            seen.append({i for r in T.read_records(T.records_path(out, k, 2)) for i in r["doc_ids"]})
            assert st["complete"] and st["shard_docs"] == len(seen[-1])
        again = T.run(docs, gen, sb, out, cfg, progress=None)
    assert again["chunks_run"] == 0 and again["resumed_docs"] == len(seen[1])
    assert not (seen[0] & seen[1]) and seen[0] | seen[1] == {d["id"] for d in docs}
    counts = T.materialize(docs, out, cfg)
    assert counts["documents_done"] == 4 and sorted(counts["shards_present"]) == ["shard-0-of-2", "shard-1-of-2"]
    rows = [json.loads(x) for x in (out / "passages.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == [d["id"] for d in docs], "merged in corpus order, once each"
    blocks = [json.loads(x) for x in (out / "blocks.jsonl").read_text().splitlines()]
    assert len({b["id"] for b in blocks}) == len(blocks)
    from mathcode.translate.verify import OUTCOMES
    assert all(b["outcome"] in OUTCOMES for b in blocks)
