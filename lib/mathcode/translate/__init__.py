"""Phase 2 — translation: math passages become verified (reasoning step, Python code) pairs.

Modules, in the order the notebook uses them:
  ``passages``  find computations in corpus documents and cut passages with their context;
  ``prompt``    the four-field instruction (Conditions Needed, Computation Expression, Computation Result,
                Python Code Snippet) and the optional worked example;
  ``parse``     read replies back into blocks, tolerant of format drift, recording what cannot be read;
  ``sandbox``   run model-written snippets in isolation (bubblewrap when present) with hard limits;
  ``verify``    the verdict on a block, check by check (what "verified" means);
  ``values``    printed and stated values read from text, and when two are equal (plain Python, bounded);
  ``symbolic``  LaTeX and sympy printouts through latex2sympy/sympy/math-verify (only inside ``bounded``);
  ``bounded``   the killable worker process that reads every untrusted text for the judge;
  ``grounding`` the stated result and the code's operands are the passage's numbers; expression consistency;
  ``metamorphic`` computed-from-the-inputs, decided by re-running the snippet with those inputs perturbed;
  ``translate`` the resumable, sharded driver and the output formats;
  ``report``    yield funnel per source, outcome counts, examples.
"""
