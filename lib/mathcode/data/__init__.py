"""Phase 1 — data sampling: sources, math classifier, quality filters, near-dedup, decontamination, mixture.

One implementation serves the notebook (step by step, in memory, with a report per step) and the scaled
route (the same step objects chained lazily over sharded streams, or wrapped as datatrove pipeline steps).
Documents are plain dicts ``{"id", "text", "source", "meta"}``.
"""
