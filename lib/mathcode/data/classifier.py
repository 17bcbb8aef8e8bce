"""The paper's recall step: a fastText math-vs-non-math classifier, trained in two rounds.

Round 1 trains on seed positives (trusted math sources) against negatives; it scores a pool; confident new
positives from the pool extend the seed set; round 2 is retrained and applied with the threshold. fastText
(rather than a transformer) because this is what the paper used: it scores millions of pages per CPU hour.
Models are saved as ``.bin`` under the run dir and reload with ``MathClassifier.load(path)``.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mathcode.util import write_json
from mathcode.data.records import Step
from mathcode.textnorm import ft_line

POS, NEG = "__label__math", "__label__other"


@dataclass
class MathClassifier:
    model: object
    path: str | None = None
    info: dict = field(default_factory=dict)

    @classmethod
    def train(cls, positives: list[str], negatives: list[str], *, dim: int = 32, epoch: int = 15,
              lr: float = 0.5, word_ngrams: int = 2, bucket: int = 100_000, seed: int = 0,
              threads: int = 1) -> "MathClassifier":
        """``threads`` defaults to 1 because fastText's multi-threaded (Hogwild) training is not reproducible
        for a fixed seed; two demo runs with 2 threads gave different pool scores and corpora."""
        if not positives or not negatives:
            raise ValueError(f"classifier needs positives and negatives (got {len(positives)} and {len(negatives)}); "
                             f"check `classifier_positives` / `classifier_negatives`")
        rows = [f"{POS} {ft_line(t)}" for t in positives] + [f"{NEG} {ft_line(t)}" for t in negatives]
        random.Random(seed).shuffle(rows)
        with tempfile.TemporaryDirectory(prefix="mathcode_ft_") as tmp:
            data = Path(tmp) / "train.txt"
            data.write_text("\n".join(rows) + "\n", encoding="utf-8")
            for attempt in range(4):
                # fastText's SGD can diverge ("Encountered NaN") at a high learning rate; halving it is fastText's
                # own advice, and the lr used is recorded.
                try:
                    model = _train_in_child(data, Path(tmp) / "model.bin", dict(
                        dim=dim, epoch=epoch, lr=lr, wordNgrams=word_ngrams, bucket=bucket, seed=seed,
                        thread=threads, verbose=0, minCount=1))
                    break
                except RuntimeError as e:
                    if "NaN" not in str(e) or attempt == 3:
                        raise
                    lr /= 2
        return cls(model, info={"n_pos": len(positives), "n_neg": len(negatives), "dim": dim, "epoch": epoch,
                                "lr": lr, "word_ngrams": word_ngrams, "bucket": bucket, "seed": seed})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MathClassifier":
        import fasttext
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"classifier model {p} does not exist; train one (notebook 01) or fix the path")
        return cls(fasttext.load_model(str(p)), path=str(p))

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_model(str(p))
        write_json(p.with_suffix(".json"), {"labels": [POS, NEG], "text_normalisation": "mathcode.textnorm.ft_line",
                                            **self.info})
        self.path = str(p)
        return p

    def score(self, texts: list[str]) -> np.ndarray:
        """P(math) per text."""
        if not texts:
            return np.zeros(0)
        labels, probs = self.model.predict([ft_line(t) for t in texts], k=2)
        out = np.empty(len(texts))
        for i, (ls, ps) in enumerate(zip(labels, probs)):
            d = dict(zip(ls, ps))
            out[i] = float(d.get(POS, 1.0 - d.get(NEG, 0.0)))
        return np.clip(out, 0.0, 1.0)


def _train_in_child(data: Path, out: Path, params: dict):
    """Train with ``fasttext.train_supervised`` in a fresh child process and load the saved model here.

    Why a child: the fastText build the kit installs (fasttext-numpy2-wheel 0.9.2) reads memory it never
    initialised during supervised training. In a fresh process glibc hands large buffers over as zeroed pages, so
    training is clean; after a few models were freed, glibc recycles heap memory and training fails with
    "Encountered NaN" at *any* learning rate. Measured on 40 fixed training files x 3 passes in one process:
    71/120 trainings failed; with glibc's mmap threshold pinned (MALLOC_MMAP_THRESHOLD_, large buffers always
    fresh pages) 0/120 failed. The child gets that setting and starts from clean memory every time.
    """
    import subprocess
    import sys

    import fasttext
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}      # the child imports only fasttext
    code = ("import json, sys, fasttext\n"
            "a = json.loads(sys.argv[1])\n"
            "try:\n"
            "    fasttext.train_supervised(a['data'], **a['params']).save_model(a['out'])\n"
            "except RuntimeError as e:\n"
            "    sys.stderr.write('FASTTEXT_ERROR: %s' % e); sys.exit(3)\n")
    arg = json.dumps({"data": str(data), "out": str(out), "params": params})
    proc = subprocess.run([sys.executable, "-c", code, arg], env=env, capture_output=True, text=True)
    if proc.returncode == 3 and "FASTTEXT_ERROR: " in proc.stderr:
        raise RuntimeError(proc.stderr.split("FASTTEXT_ERROR: ", 1)[1].strip())
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"fastText training in a child process failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return fasttext.load_model(str(out))


def auc(scores, labels) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) identity, ties averaged."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):                      # average ranks of ties
        m = s == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate(clf: MathClassifier, texts: list[str], labels: list[bool], threshold: float = 0.5) -> dict:
    s = clf.score(texts)
    y = np.asarray(labels, bool)
    pred = s >= threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return {"n": len(y), "n_pos": int(y.sum()), "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec and rec and prec + rec else 0.0,
            "auc": auc(s, y), "threshold": threshold}


def split(docs: list[dict], holdout: float, seed: int) -> tuple[list[dict], list[dict]]:
    idx = list(range(len(docs)))
    random.Random(seed).shuffle(idx)
    k = int(round(len(docs) * holdout))
    return [docs[i] for i in idx[k:]], [docs[i] for i in idx[:k]]


@dataclass
class TwoRoundResult:
    round1: MathClassifier
    round2: MathClassifier
    metrics: list[dict]               # held-out metrics per round
    holdout: list[dict]               # [{"id", "source", "label", "score_r1", "score_r2"}]
    recalled: list[dict]              # pool docs added as positives after round 1 (with scores)
    pool_scores: dict                 # doc id -> round-2 score


def two_round(positives: list[dict], negatives: list[dict], pool: list[dict], *, threshold: float = 0.5,
              confident: float = 0.9, holdout: float = 0.2, seed: int = 0, out_dir: str | os.PathLike | None = None,
              **ft) -> TwoRoundResult:
    """Round 1 on seeds, recall confident pool positives, retrain (round 2); held-out P/R/AUC for both rounds
    on the same held-out seed split (pool docs never enter the held-out set)."""
    pos_tr, pos_te = split(positives, holdout, seed)
    neg_tr, neg_te = split(negatives, holdout, seed + 1)
    te = pos_te + neg_te
    te_y = [True] * len(pos_te) + [False] * len(neg_te)
    r1 = MathClassifier.train([d["text"] for d in pos_tr], [d["text"] for d in neg_tr], seed=seed, **ft)
    pool_s1 = r1.score([d["text"] for d in pool])
    recalled = [{**d, "score_r1": float(s)} for d, s in zip(pool, pool_s1) if s >= confident]
    r2 = MathClassifier.train([d["text"] for d in pos_tr] + [d["text"] for d in recalled],
                              [d["text"] for d in neg_tr], seed=seed, **ft)
    pool_s2 = r2.score([d["text"] for d in pool])
    metrics = []
    for name, m in (("round1", r1), ("round2", r2)):
        metrics.append({"round": name, **evaluate(m, [d["text"] for d in te], te_y, threshold), "n_train_pos":
                        m.info["n_pos"], "n_train_neg": m.info["n_neg"]})
    te_s1, te_s2 = r1.score([d["text"] for d in te]), r2.score([d["text"] for d in te])
    hold = [{"id": d["id"], "source": d["source"], "label": y, "score_r1": float(a), "score_r2": float(b)}
            for d, y, a, b in zip(te, te_y, te_s1, te_s2)]
    if out_dir is not None:
        r1.save(Path(out_dir) / "classifier_round1.bin")
        r2.save(Path(out_dir) / "classifier_round2.bin")
    return TwoRoundResult(r1, r2, metrics, hold, recalled,
                          {d["id"]: float(s) for d, s in zip(pool, pool_s2)})



class ClassifierFilter(Step):
    """Step form of a trained classifier: judges only ``applies_to`` sources (the pool; trusted math sources
    pass), keeps documents scoring >= threshold, records the score in ``meta.math_score``."""
    name = "math_classifier"

    def __init__(self, clf: MathClassifier, threshold: float = 0.5, applies_to=None):
        self.clf, self.threshold = clf, threshold
        self.applies_to = set(applies_to) if applies_to is not None else None

    def decide(self, docs):
        s = self.clf.score([d["text"] for d in docs])
        out = []
        for d, v in zip(docs, s):
            d.setdefault("meta", {})["math_score"] = round(float(v), 4)
            out.append((True, None) if v >= self.threshold else
                       (False, {"reason": "below_threshold", "math_score": round(float(v), 4)}))
        return out
