"""What a notebook uses to read its inputs and write its artefacts.

Each phase writes into ``run_dir/NN_phase/``:
  ``phase.json``    status "running" at start, "complete" (with metrics) only from ``finish()``;
  ``metrics.json``  key numbers for the manifest and the report;
  ``figures/``      PNGs (the report shows them in order);
  ``tables/``       CSVs behind the figures.
The runner adds ``manifest.json`` (parameters, versions, hashes) around this.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from mathcode import cpu, paths
from mathcode.settings import PhaseSettings
from mathcode.util import write_json

UPSTREAM = {"translation": ["data"], "pretraining": ["data", "translation"], "evaluation": ["pretraining"]}


class MissingInputError(FileNotFoundError):
    """A phase was started without its predecessor's complete outputs."""


class Phase:
    def __init__(self, name: str, run_dir: str, values: dict | None = None):
        self.name = name
        self.run_dir = paths.resolve_path(run_dir)
        self.dir = paths.phase_dir(run_dir, name)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "figures").mkdir(exist_ok=True)
        (self.dir / "tables").mkdir(exist_ok=True)
        self.values = values or {}
        self.settings = None                                  # the checked settings object (set by start)
        self.metrics: dict = {}
        self.figures: list[dict] = []
        self.inputs: list[str] = []
        self.t0 = time.time()
        self.cpu_threads: dict = {}
        write_json(self.dir / "phase.json", {"phase": name, "status": "running", "started": _now()})

    # --- inputs -----------------------------------------------------------------------------------
    def upstream_dir(self, phase: str) -> Path:
        return paths.phase_dir(self.run_dir, phase)

    def require(self, phase: str, relpath: str) -> Path:
        """Path of an upstream artefact; a one-line cause and remedy when it is missing or unfinished."""
        d = self.upstream_dir(phase)
        f = d / relpath
        status = _status(d)
        remedy = (f"run phase '{phase}' first (python -m mathcode run --config <recipe> --run-dir {self.run_dir} "
                  f"--phases {phase}) or point run_dir at a run that has it")
        if status is not None and status != "complete":
            raise MissingInputError(f"phase '{self.name}' needs {f}, but phase '{phase}' is {status!r} in {d}; {remedy}")
        if not f.exists():
            raise MissingInputError(f"phase '{self.name}' needs {f}, which does not exist; {remedy}")
        self.add_input(f)
        return f

    def add_input(self, f) -> None:
        """Record a file this phase read (hashed into the manifest; a changed input re-runs the phase)."""
        f = str(Path(f).resolve())
        if f not in self.inputs:
            self.inputs.append(f)

    # --- outputs ----------------------------------------------------------------------------------
    def path(self, relpath: str) -> Path:
        p = self.dir / relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def save_figure(self, fig, name: str, caption: str = "") -> None:
        """Save a matplotlib/seaborn figure as figures/NAME.png and list it for the report. Returns nothing: a cell
        that ends with it shows the figure, not ``Out: PosixPath(...)`` (the file is ``figure_path(name)``)."""
        from mathcode import figure_text
        p = self.figure_path(name)
        figure_text.tidy(fig)            # identifiers (source, column names) become words on the projected figure
        fig.savefig(p, dpi=110, bbox_inches="tight")
        self.figures = [f for f in self.figures if f["file"] != p.name] + [{"file": p.name, "caption": caption}]
        write_json(self.dir / "figures" / "index.json", self.figures)

    def figure_path(self, name: str) -> Path:
        return self.dir / "figures" / f"{name}.png"

    def save_table(self, df, name: str) -> Path:
        p = self.dir / "tables" / f"{name}.csv"
        df.to_csv(p, index=False)
        return p

    def log(self, **metrics) -> dict:
        """Record key numbers (shown in the manifest and the report)."""
        self.metrics.update(metrics)
        write_json(self.dir / "metrics.json", self.metrics)
        return self.metrics

    def finish(self, **metrics) -> dict:
        """Mark the phase complete. Call it as the notebook's last step, after every artefact is written."""
        self.log(**metrics)
        write_json(self.dir / "phase.json", {"phase": self.name, "status": "complete", "started": _now(self.t0),
                                             "finished": _now(), "seconds": round(time.time() - self.t0, 1),
                                             "cpu_threads": self.cpu_threads, "inputs": self.inputs,
                                             "metrics": self.metrics})
        print(f"phase {self.name} complete in {time.time() - self.t0:.0f} s: {len(self.metrics)} key numbers recorded "
              f"in {self.dir.name}/metrics.json (the run's report.html puts them into words)")
        return self.metrics


def start(settings: type[PhaseSettings], namespace: dict) -> Phase:
    """First cell after the parameters: build the phase's settings from them (``settings.from_namespace``: every
    name, type, rule and cross-key rule checked before any work), set CPU threads, open the phase dir.
    ``P.settings`` is the checked settings object the steps take; ``P.values`` the same as a dict."""
    from mathcode.models import quiet_weight_loading
    quiet_weight_loading()      # first: checking parameters may import transformers (and so bitsandbytes) already
    if not (isinstance(settings, type) and issubclass(settings, PhaseSettings)):
        raise TypeError(f"phase.start takes the phase's settings class (e.g. mathcode.data.settings.DataSettings), "
                        f"got {settings!r}")
    S = settings.from_namespace(namespace)
    name = settings.PHASE
    values = S.as_dict()
    threads, why = cpu.set_cpu_threads()       # the kit's one thread policy (mathcode.cpu)
    _seed_everything(S.seed)
    P = Phase(name, S.run_dir, values)
    P.settings = S
    P.cpu_threads = {"threads": threads, "source": why}
    print(f"phase {name}: writing {P.dir} · CPU threads {threads or 'torch default'} ({why})")
    return P


def _status(d: Path):
    f = d / "phase.json"
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text()).get("status")
    except json.JSONDecodeError:
        return "corrupt"


def _seed_everything(seed: int):
    import random
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:
        pass


def _now(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t if t is not None else time.time()))
