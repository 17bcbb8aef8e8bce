"""Progress bars that read right wherever the code runs.

* In JupyterLab / a notebook with a frontend: tqdm's widget bar (ipywidgets is a dependency of the kit).
* Headless, when the runner executes a notebook with papermill (it sets ``MATHCODE_HEADLESS=1``): a widget would be
  stored as a frozen text fallback ("0%| 0/300") and a text bar on stderr as a pink box of carriage returns, so the
  bar is plain text on **stdout**, redrawn at most every ``HEADLESS_INTERVAL`` seconds; the runner keeps only the
  last state of every carriage-return line when it stores the executed notebook, so the reader sees one line,
  ``translating: 100%|...| 12/12 [01:02<00:00]``, while the terminal shows the bar moving.
* Anywhere else (a terminal, the tests): tqdm's ordinary bar on stderr.
"""
from __future__ import annotations

import os
import re
import sys

HEADLESS_ENV = "MATHCODE_HEADLESS"
HEADLESS_INTERVAL = 10.0


def headless() -> bool:
    return os.environ.get(HEADLESS_ENV) == "1"


def bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", disable: bool = False, initial: int = 0,
        leave: bool = True):
    """A tqdm bar of the right kind for where this runs (see the module docstring). Same API as ``tqdm``."""
    if headless():
        from tqdm.std import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial, leave=True,
                    file=sys.stdout, mininterval=HEADLESS_INTERVAL, ncols=90, ascii=" #")
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial, leave=leave)


_CSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def collapse_carriage_returns(text: str) -> str:
    """What a terminal would show: each line keeps only what follows its last carriage return (a redrawn progress
    bar becomes its final state); cursor-movement escapes that text bars emit are dropped."""
    out = []
    for line in _CSI.sub("", text).split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p.strip()]
            line = parts[-1].rstrip() if parts else ""
        out.append(line)
    return "\n".join(out)
