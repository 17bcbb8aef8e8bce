"""Phase 2 — translation: math passages become verified (reasoning step, Python code) pairs.

Modules, in the order the notebook uses them:
  ``passages``  find computations in corpus documents and cut passages with their context;
  ``prompt``    the four-field instruction (Conditions Needed, Computation Expression, Computation Result,
                Python Code Snippet) and the optional worked example;
  ``parse``     read replies back into blocks, tolerant of format drift, recording what cannot be read;
  ``sandbox``   run model-written snippets in isolation (bubblewrap when present) with hard limits;
  ``verify``    numeric (|diff| <= 0.01, as in the paper) and symbolic (math-verify) comparison;
  ``translate`` the resumable, sharded driver and the output formats;
  ``report``    yield funnel per source, outcome counts, examples.
"""
