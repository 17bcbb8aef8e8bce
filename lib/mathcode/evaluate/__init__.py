"""Phase 4 — evaluation: five benchmarks (GSM8K, MATH, SAT-Math, OCW, MMLU-Math) and custom files,
4-shot prompts, answer extraction + math-verify equivalence, base vs. adapter comparison with intervals,
gold-solution NLL probe, optional tool-integrated (PAL) mode.

Modules: ``benchmarks`` (loaders), ``fewshot`` (exemplars, prompts), ``extract`` / ``equivalence``
(scoring), ``harness`` (generation + per-item rows), ``compare`` (tables, CIs, flips, charts), ``nll``
(probe), ``pal`` (sandboxed programs), ``pipeline`` (the notebook's choices); the tiny test adapter lives in tests/tiny_adapter.py.
"""
