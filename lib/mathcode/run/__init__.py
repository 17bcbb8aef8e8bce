"""The run layer: everything above the four phases — recipes (``config``), running them (``runner``, ``ablation``),
planning (``plan``), rehearsing on CPU (``rehearse``) and reporting (``report``, ``browser``).

Arrows point down: the run layer imports the phases and the spine, never the reverse.
"""
