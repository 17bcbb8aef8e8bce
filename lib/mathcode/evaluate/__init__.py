"""Phase 4 — evaluation: five benchmarks (GSM8K, MATH, SAT-Math, OCW, MMLU-Math) and custom files,
4-shot prompts, answer extraction + math-verify equivalence, base vs. adapter comparison with intervals,
gold-solution NLL probe, optional tool-integrated (PAL) mode.

Modules: ``benchmarks`` (loaders), ``fewshot`` (the kit's exemplars and templates), ``protocols`` (the registry of
evaluation protocols: template, exemplars, stops, scorer per entry), ``extract`` / ``equivalence`` (scoring),
``harness`` (generation + per-item rows), ``compare`` (tables, CIs, flips, charts), ``nll`` (probe; the scoring is
the backend's ``Generator.nll``), ``pal`` (sandboxed programs), ``steps`` (the notebook's choices); the tiny test
adapter lives in tests/tiny_adapter.py.
"""
