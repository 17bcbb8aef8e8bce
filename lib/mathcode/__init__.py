"""mathcode — a notebook-first research kit for the MathCoder2 recipe (Lu et al., 2024, arXiv 2410.08196).

Phases (one notebook each, one subpackage each):
  1. ``mathcode.data``       — sources, math classifier, quality filters, near-dedup, decontamination, mixture
  2. ``mathcode.translate``  — passages, prompt, generation, parsing, sandboxed execution, verification
  3. ``mathcode.train``      — packing, 4-bit QLoRA continued pretraining
  4. ``mathcode.evaluate``   — benchmarks, answer extraction and equivalence, base-vs-trained comparison

Shared: ``paths`` (project root and run layout), ``config`` (recipes), ``models`` (model-spec resolver),
``generation`` (backends shared by phases 2 and 4), ``phase`` (what a notebook uses to write artefacts),
``runner`` (papermill orchestration, manifests, report).
"""

__version__ = "0.1.0"
