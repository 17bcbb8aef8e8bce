"""The output contract, the streaming route, the datatrove route and the notebook end to end."""
import json
import subprocess
import sys

import pytest

from mathcode import paths
from mathcode.data import pipeline
from mathcode.data.sources import load_sources
from mathcode.util import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def docs():
    d = load_sources(["embedded:champ_solutions", "embedded:rg_gsm_symbolic", "embedded:rg_math_drills"],
                     max_docs=80, seed=0)
    return d + [{**x, "id": x["id"] + "-copy"} for x in d[:10]]          # exact copies to dedup


def test_corpus_files_follow_the_contract_and_load_with_datasets(docs, tmp_path):
    info = pipeline.write_corpus(docs[:50], tmp_path)
    rows = read_jsonl(tmp_path / "corpus.jsonl")
    assert info["rows"] == 50 and all(set(r) == {"id", "text", "source", "meta"} for r in rows)
    import datasets
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "corpus.parquet"), split="train")
    assert ds.num_rows == 50 and ds[0]["id"] == rows[0]["id"] and isinstance(ds[0]["meta"], dict)


def test_empty_or_duplicate_corpus_is_refused(docs, tmp_path):
    with pytest.raises(ValueError, match="corpus is empty"):
        pipeline.write_corpus([], tmp_path)
    with pytest.raises(ValueError, match="duplicate id"):
        pipeline.write_corpus([docs[0], docs[0]], tmp_path)
    assert not (tmp_path / "corpus.jsonl").exists()


def test_streaming_route_matches_step_by_step(docs, tmp_path):
    def steps():
        return pipeline.filter_steps(min_chars=60, dedup=True, dedup_threshold=0.8)
    cur = docs
    for s in steps():
        cur, _ = s.apply(cur)
    n, reports = pipeline.run_streaming(iter(docs), steps(), tmp_path / "out.jsonl", shard_size=17)
    assert n == len(cur) and [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [d["id"] for d in cur]
    assert reports[-1].step == "near_dedup" and reports[-1].n_removed >= 10


@pytest.mark.slow
@pytest.mark.skipif(paths.benchmarks_dir() is None, reason="../shared/data/benchmarks absent (decontamination data)")
def test_datatrove_route_runs_the_same_steps(docs, tmp_path):
    from mathcode.data import datatrove_route as R
    write_jsonl(tmp_path / "in" / "part0.jsonl", docs)
    R.run_local(str(tmp_path / "in"), str(tmp_path / "out"), str(tmp_path / "work"),
                filters=[("length", {"min_chars": 60})], decontam={"benchmarks": "default"},
                dedup={"num_perm": 64, "shingle": 5, "threshold": 0.8})
    out = [json.loads(l) for f in sorted((tmp_path / "out").glob("*.jsonl")) for l in open(f)]
    ids = {r["id"] for r in out}
    assert out and set(out[0]) == {"id", "text", "source", "meta"}
    assert not any(i.endswith("-copy") and i[:-5] in ids for i in ids)           # copies deduplicated
    decon = pipeline.filter_steps(quality=[], dedup=False,
                                  benchmarks=__import__("mathcode.data.decontaminate", fromlist=["x"]).load_benchmarks("default"))[0]
    assert all(decon.match(r["text"]) is None for r in out)                     # nothing contaminated left
    assert any(d["source"] == "rg_gsm_symbolic" and d["id"] not in ids for d in docs)


SMOKE = {"max_docs_per_source": 40, "max_negatives": 200, "classifier_epochs": 5, "token_budget": 20000}


@pytest.mark.slow
def test_notebook_runs_by_papermill(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "papermill", str(paths.project_root() / "notebooks" / "01_data_sampling.ipynb"),
            str(tmp_path / "out.ipynb"), "-p", "run_dir", str(run)]
    for k, v in SMOKE.items():
        args += ["-p", k, str(v)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = run / "01_data"
    assert json.loads((d / "phase.json").read_text())["status"] == "complete"
    rows = read_jsonl(d / "corpus.jsonl")
    assert rows and len({r["id"] for r in rows}) == len(rows)
    assert sum(r["meta"]["n_tokens"] for r in rows) == pytest.approx(20000, rel=0.1)
    for f in ("funnel.png", "classifier_heldout_scores.png", "dedup_cluster_sizes.png", "decontamination.png"):
        assert (d / "figures" / f).stat().st_size > 2000      # a rendered figure, not an empty file
    assert (d / "classifier" / "classifier_round2.bin").exists() and (d / "removed_decontaminated.jsonl").exists()
    # phase 2 starts from here: its require() must find the corpus
    from mathcode.phase import Phase
    assert Phase("translation", str(run)).require("data", "corpus.jsonl").exists()


def test_bad_parameter_type_fails_in_cell_two(tmp_path):
    from mathcode.run import params
    with pytest.raises(params.ParameterError, match="max_docs_per_source"):
        params.check("data", {"max_docs_per_source": "many"})
