"""The fastText math classifier separates math from non-math on held-out embedded data.

Observed on the demo data: held-out AUC 0.9995 (round 1 and round 2); this test asserts >= 0.97."""
import numpy as np
import pytest

from mathcode.data import classifier as C
from mathcode.data.sources import load_sources


@pytest.fixture(scope="module")
def data():
    pos = load_sources(["embedded:champ_solutions", "embedded:rg_gsm_symbolic", "embedded:rg_math_drills",
                        "embedded:math_docstrings_seed"], max_docs=120, seed=0)
    neg = load_sources(["embedded:stdlib_prose"], max_docs=500, seed=0)
    pool = load_sources(["embedded:math_package_docstrings"], max_docs=150, seed=0)
    return pos, neg, pool


def test_two_round_classifier_separates_math_from_prose(data, tmp_path):
    pos, neg, pool = data
    r = C.two_round(pos, neg, pool, holdout=0.25, seed=0, out_dir=tmp_path, epoch=10)
    for m in r.metrics:
        assert m["auc"] >= 0.97, m
        assert m["precision"] >= 0.9 and m["recall"] >= 0.9, m
    assert r.metrics[1]["n_train_pos"] == r.metrics[0]["n_train_pos"] + len(r.recalled)
    assert all(d["source"] == "math_package_docstrings" and d["score_r1"] >= 0.9 for d in r.recalled)
    # saved models reload by path and score identically
    again = C.MathClassifier.load(tmp_path / "classifier_round2.bin")
    texts = [d["text"] for d in pool[:20]]
    assert np.allclose(again.score(texts), r.round2.score(texts))


def test_classifier_filter_judges_only_pool_sources(data):
    pos, neg, pool = data
    clf = C.MathClassifier.train([d["text"] for d in pos], [d["text"] for d in neg], epoch=5)
    step = C.ClassifierFilter(clf, threshold=0.5, applies_to={"math_package_docstrings"})
    prose_as_trusted = [{**d, "source": "trusted"} for d in neg[:30]]
    kept, rep = step.apply(prose_as_trusted + pool)
    assert sum(d["source"] == "trusted" for d in kept) == 30        # not judged: passes
    assert all(d["meta"]["math_score"] >= 0.5 for d in kept if d["source"] != "trusted")


def test_auc_matches_definition():
    assert C.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert C.auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)


def test_training_without_negatives_is_refused():
    with pytest.raises(ValueError, match="positives and negatives"):
        C.MathClassifier.train(["x = 1"], [])


def test_many_trainings_in_one_process_never_diverge_and_repeat_exactly(data):
    """A CI run failed with fastText "Encountered NaN" at every learning rate: the installed
    fastText build reads uninitialised memory, which is clean in a fresh process and garbage once glibc recycles
    freed models (71 of 120 trainings failed in one process). Training now runs in a child process; a notebook
    kernel or a test session that trains many classifiers must get the same model every time."""
    pos, neg, _ = data
    texts = [d["text"] for d in pos[:5] + neg[:5]]
    first = None
    for seed in range(30):
        clf = C.MathClassifier.train([d["text"] for d in pos[seed:seed + 60]], [d["text"] for d in neg[:60]],
                                     epoch=5, seed=seed % 3)
        assert clf.info["lr"] == 0.5, f"training {seed} diverged and was retried at a lower learning rate"
        if seed == 0:
            first = clf.score(texts)
    again = C.MathClassifier.train([d["text"] for d in pos[:60]], [d["text"] for d in neg[:60]], epoch=5, seed=0)
    assert np.array_equal(again.score(texts), first), "same data and seed must give the same model"
