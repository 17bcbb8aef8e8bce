"""Near-duplicate removal with MinHash LSH (datasketch): the first document of a near-duplicate cluster is
kept, later ones are removed and recorded with the id they duplicate and the estimated Jaccard similarity.

Shingles are word n-grams (``shingle`` words, from ``textnorm.words``). LSH candidates are confirmed with the
MinHash Jaccard estimate, so a band collision below ``threshold`` does not remove anything. Memory grows with
the number of *kept* documents (their signatures), not their text.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from mathcode.data.records import Step
from mathcode.textnorm import words


def shingles(text: str, n: int) -> set[bytes]:
    w = words(text)
    if len(w) < n:
        return {" ".join(w).encode()} if w else {b""}
    return {" ".join(w[i:i + n]).encode() for i in range(len(w) - n + 1)}


class MinHashDedup(Step):
    name = "near_dedup"

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle: int = 5, seed: int = 1):
        from datasketch import MinHash, MinHashLSH
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"dedup_threshold must be in (0, 1], got {threshold}")
        self.threshold, self.num_perm, self.shingle, self.seed = threshold, num_perm, shingle, seed
        self._MinHash = MinHash
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._proto = MinHash(num_perm=num_perm, seed=seed)   # permutations computed once, shared by copies
        self.kept_sigs: dict[str, np.ndarray] = {}
        self.cluster_of: dict[str, str] = {}                  # removed id -> kept id
        self.cluster_size: Counter = Counter()                # kept id -> cluster size (incl. itself)

    def signature(self, text: str):
        m = self._MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._proto.permutations,
                          scheme=self._proto.scheme)
        m.update_batch(list(shingles(text, self.shingle)))
        return m

    def decide(self, docs):
        out = []
        for d in docs:
            m = self.signature(d["text"])
            best, best_j = None, 0.0
            for cand in self.lsh.query(m):
                j = float(np.mean(self.kept_sigs[cand] == m.hashvalues))
                if j > best_j:
                    best, best_j = cand, j
            if best is not None and best_j >= self.threshold:
                self.cluster_of[d["id"]] = best
                self.cluster_size[best] += 1
                out.append((False, {"reason": "near_duplicate", "duplicate_of": best, "jaccard_est": round(best_j, 3)}))
                continue
            if d["id"] in self.kept_sigs:
                raise ValueError(f"duplicate document id {d['id']!r} reached near-dedup; ids must be unique")
            self.lsh.insert(d["id"], m)
            self.kept_sigs[d["id"]] = m.hashvalues
            self.cluster_size[d["id"]] = 1
            out.append((True, None))
        return out

    def cluster_sizes(self) -> Counter:
        """How many clusters have each size (size 1 = no duplicate found)."""
        return Counter(self.cluster_size.values())
