"""Phase 2's datatrove route, run locally: corpus JSONL -> passages -> InferenceRunner against a REAL
OpenAI-compatible server (`transformers serve` with the embedded model) -> sandbox -> verdicts."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("datatrove")


def test_passage_splitter_yields_one_document_per_passage():
    from datatrove.data import Document

    from mathcode.translate.datatrove_route import PassageSplitter
    docs = [Document(text="A box holds 4 pens.\n\nSo 3 boxes hold 4*3 = 12 pens.", id="a", metadata={"source": "s"}),
            Document(text="No computation here.", id="b", metadata={"source": "s"})]
    out = list(PassageSplitter(max_passages_per_doc=2).run(iter(docs)))
    assert [d.id for d in out] == ["a#p0"] and out[0].metadata["doc_id"] == "a" and "4*3 = 12" in out[0].text


@pytest.fixture(scope="module")
def endpoint(embedded_model_dir, tmp_path_factory):
    from served_model import transformers_serve
    # /v1/models (datatrove's readiness probe) scans the hub cache: give it one
    with transformers_serve(embedded_model_dir, tmp_path_factory.mktemp("serve"),
                            hub_cache=tmp_path_factory.mktemp("hub")) as url:
        yield url, str(embedded_model_dir)          # the server root: datatrove appends /v1/...


@pytest.mark.slow
def test_local_pipeline_translates_verifies_and_resumes(tmp_path, endpoint):
    from datatrove.executor import LocalPipelineExecutor

    from mathcode.generation import GenConfig
    from mathcode.translate import datatrove_route as R
    from mathcode.translate.translate import TranslateConfig
    from mathcode.translate.verify import OUTCOMES
    url, model = endpoint
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"id": f"d{i}", "source": "drills", "text": f"Each crate has {i + 2} bottles.\n\n"
             f"So 5 crates hold {i + 2}*5 = {(i + 2) * 5} bottles."} for i in range(3)]
    (corpus / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TranslateConfig(max_passages_per_doc=1, max_blocks=1, worked_example=False,
                          gen=GenConfig(max_new_tokens=24))

    def run():
        LocalPipelineExecutor(R.build_pipeline(str(corpus), str(tmp_path / "out"), server_type="endpoint", model=model,
                                               endpoint_url=url, cfg=cfg,
                                               max_concurrent=2),
                              tasks=1, logging_dir=str(tmp_path / "logs")).run()
    run()
    got = R.collect(tmp_path / "out")
    assert sorted(p["id"] for p in got["passages"]) == ["d0#p0", "d1#p0", "d2#p0"]
    assert all(r["text"] for r in got["replies"]), "every passage got a real reply from the server"
    assert got["blocks"] and all(b["outcome"] in OUTCOMES and b["passage_id"] in {"d0#p0", "d1#p0", "d2#p0"}
                                 for b in got["blocks"])
    run()                                            # a finished task is skipped, nothing written twice
    again = R.collect(tmp_path / "out")
    assert sorted(p["id"] for p in again["passages"]) == ["d0#p0", "d1#p0", "d2#p0"]
