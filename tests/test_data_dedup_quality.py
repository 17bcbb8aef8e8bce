"""MinHash near-dedup catches planted near-duplicates and keeps distinct documents; quality filters report."""
import random

from mathcode.data.dedup import MinHashDedup, shingles
from mathcode.data.quality import LengthFilter, RepetitionFilter, SymbolDensityFilter
from mathcode.data.sources import load_sources


def _perturb(text: str, rng: random.Random, n_edits: int = 2) -> str:
    w = text.split()
    for _ in range(n_edits):
        w[rng.randrange(len(w))] = "changed"
    return " ".join(w)


def test_minhash_catches_planted_near_duplicates_and_keeps_distinct():
    docs = load_sources(["embedded:champ_solutions"], max_docs=120, seed=0)
    docs = [d for d in docs if len(d["text"].split()) >= 80][:60]
    rng = random.Random(0)
    planted = [{"id": f"dup-{i}", "text": _perturb(d["text"], rng, 1), "source": "planted", "meta": {}}
               for i, d in enumerate(docs[:20])]
    for d, p in zip(docs, planted):                                 # the fixture really is near-duplicate
        a, b = shingles(d["text"], 5), shingles(p["text"], 5)
        assert len(a & b) / len(a | b) >= 0.85
    step = MinHashDedup(threshold=0.7, num_perm=128, shingle=5)
    kept, rep = step.apply(docs + planted)
    removed = {e["id"] for e in rep.removed} | {d["id"] for d in docs + planted} - {d["id"] for d in kept}
    assert {p["id"] for p in planted} <= removed                   # every planted copy caught
    assert all(d["id"] in {k["id"] for k in kept} for d in docs)    # no distinct original lost
    assert step.cluster_of["dup-3"] == docs[3]["id"]
    assert step.cluster_sizes()[2] == 20


def test_quality_filters_report_reasons_and_examples():
    docs = [{"id": "short", "text": "x=1", "source": "s", "meta": {}},
            {"id": "ok", "text": "Let $x = 3$. Then $x^2 + 1 = 10$, so the answer is 10. " * 2, "source": "s", "meta": {}},
            {"id": "rep", "text": "\n".join(["the same line again"] * 10), "source": "s", "meta": {}},
            {"id": "soup", "text": "{{{}}}|||$$$^^^___" * 5, "source": "s", "meta": {}}]
    kept, rep = LengthFilter(min_chars=20).apply(docs)
    assert [d["id"] for d in kept] == ["ok", "rep", "soup"] and rep.reasons["too_short"] == 1
    kept, rep = SymbolDensityFilter(max_ratio=0.8).apply(kept)
    assert "soup" not in {d["id"] for d in kept} and rep.examples[0]["reason"] == "symbol_soup"
    kept, rep = RepetitionFilter().apply(kept)
    assert [d["id"] for d in kept] == ["ok"] and rep.reasons["duplicate_lines"] == 1
