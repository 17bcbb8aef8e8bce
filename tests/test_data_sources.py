"""Sources: every bad input fails with a message naming the file/line/spec; embedded sources yield real text."""
import json

import pytest

from mathcode.data import sources as src
from mathcode.embedded import champ_math


def test_jsonl_source_reads_rows_and_provenance(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"r{i}", "text": f"Let $x={i}$. Then $x+1={i + 1}$."}) for i in range(3)))
    docs = list(src.iter_source(f"jsonl:{f}"))
    assert [d["meta"]["original_id"] for d in docs] == ["r0", "r1", "r2"]
    assert docs[0]["source"] == "jsonl:mine" and docs[0]["meta"]["line"] == 1
    assert len({d["id"] for d in docs}) == 3


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: malformed JSON"):
        list(src.iter_source(f"jsonl:{f}"))


def test_missing_text_field_names_line_and_fix(tmp_path):
    f = tmp_path / "nofield.jsonl"
    f.write_text('{"content": "a"}\n')
    with pytest.raises(src.SourceError, match=r"nofield\.jsonl:1: no field 'text'.*#FIELD"):
        list(src.iter_source(f"jsonl:{f}"))
    assert list(src.iter_source(f"jsonl:{f}#content"))[0]["text"] == "a"


def test_empty_source_is_an_error_not_an_empty_corpus(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n")
    with pytest.raises(src.SourceError, match="yielded no documents"):
        list(src.iter_source(f"jsonl:{f}"))


def test_folder_and_parquet_sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.tex").write_text(r"$\int_0^1 x\,dx = \tfrac12$")
    (tmp_path / "d" / "b.md").write_text("# Fractions\n1/2 + 1/3 = 5/6")
    (tmp_path / "d" / "skip.bin").write_text("x")
    assert sorted(d["meta"]["original_id"] for d in src.iter_source(f"folder:{tmp_path / 'd'}")) == ["a.tex", "b.md"]
    pq.write_table(pa.Table.from_pylist([{"body": "2+2=4"}, {"body": "3*3=9"}]), tmp_path / "p.parquet")
    assert [d["text"] for d in src.iter_source(f"parquet:{tmp_path / 'p.parquet'}#body")] == ["2+2=4", "3*3=9"]


def test_bad_specs_are_explained():
    with pytest.raises(src.SourceError, match="unknown kind 'ftp'"):
        src.parse_spec("ftp:x")
    with pytest.raises(src.SourceError, match="KIND:TARGET"):
        src.parse_spec("champ")
    with pytest.raises(src.SourceError, match="unknown embedded source 'nope'.*champ_solutions"):
        list(src.iter_source("embedded:nope"))
    with pytest.raises(src.SourceError, match="does not exist"):
        list(src.iter_source("jsonl:/no/such/file.jsonl"))


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(src.SourceError, match="unreachable.*offline"):
        list(src.iter_source("hub:no-such-owner/no-such-dataset"))


def test_champ_math_markup_becomes_dollars():
    assert champ_math("so @@x_1+x_2=3@@ and @@ y @@.") == "so $x_1+x_2=3$ and $y$."
    d = next(src.iter_source("embedded:champ_solutions", max_docs=1))
    assert "@@" not in d["text"] and "$" in d["text"] and d["meta"]["package"] == "champ-dataset"


def test_embedded_sources_are_deterministic_and_capped():
    a = [d["id"] for d in src.iter_source("embedded:rg_gsm_symbolic", max_docs=5, seed=3)]
    b = [d["id"] for d in src.iter_source("embedded:rg_gsm_symbolic", max_docs=5, seed=3)]
    assert a == b and len(a) == 5
    d = next(src.iter_source("embedded:rg_gsm_symbolic", max_docs=1))
    assert "Solution:" in d["text"] and d["meta"]["generator"] == "gsm_symbolic"


def test_embedded_text_is_identical_across_processes():
    """Reproducible corpora: the same seed gives the same texts in a fresh interpreter (hash randomisation on)."""
    import hashlib
    import subprocess
    import sys
    code = ("import hashlib;from mathcode.data.sources import iter_source as it;"
            "print(hashlib.md5(''.join(d['text'] for s in ('rg_math_drills','champ_solutions') "
            "for d in it('embedded:'+s, max_docs=60, seed=2)).encode()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(h)}).stdout.strip() for h in (1, 2)}
    assert len(outs) == 1 and hashlib.md5(b"").hexdigest() not in outs
