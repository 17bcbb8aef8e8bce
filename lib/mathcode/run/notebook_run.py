"""Run one phase notebook with papermill into a run folder: skipped when its manifest says it is up to date,
its progress streamed to the terminal (a per-cell bar plus the notebook's own output), a failing cell reported by
name. Used by ``runner`` for a plain recipe and by ``ablation`` for every arm run.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from mathcode.run import config as _config, kernels, notebook_tidy

from mathcode import manifest, paths, progress

from mathcode.run import params
from mathcode.phase import UPSTREAM, _status
from mathcode.util import write_json

log = logging.getLogger("mathcode.run.notebook_run")


class PhaseFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


def _say(msg: str):
    print(f"[mathcode] {msg}", flush=True)


def set_progress(on: bool) -> None:
    """Stream cell progress and notebook output to the terminal (``--quiet`` turns it off)."""
    global _PROGRESS
    _PROGRESS = bool(on)


def _select(phases) -> list[str]:
    if not phases:
        return list(_config.PHASE_ORDER)
    out = []
    for p in phases:
        key = {"01": "data", "02": "translation", "03": "pretraining", "04": "evaluation"}.get(p[:2], p)
        key = key.split("_", 1)[1] if key in paths.PHASES else key
        if key not in _config.PHASE_ORDER:
            raise _config.ConfigError(f"--phases: unknown phase {p!r}; choose from {', '.join(_config.PHASE_ORDER)}")
        out.append(key)
    return [p for p in _config.PHASE_ORDER if p in out]


_PROGRESS = True


def run_phase(recipe, phase: str, run_dir: Path, force: bool = False, extra: dict | None = None) -> dict:
    """Run one phase notebook into ``run_dir`` (skipped when up to date). ``extra``: parameters that override
    the recipe's for this run only (the ablation's arm settings)."""
    import papermill as pm

    nb_in = params.notebook_path(phase)
    pdir = paths.phase_dir(run_dir, phase)
    parameters = {**recipe.phase_params(phase, run_dir), **(extra or {})}
    upstream = [{"phase": u, "outputs": manifest.phase_outputs(paths.phase_dir(run_dir, u))}
                for u in UPSTREAM.get(phase, []) if paths.phase_dir(run_dir, u).exists()]
    upstream += _parameter_files(parameters)
    fp = manifest.fingerprint(phase, parameters, nb_in, upstream)
    old = manifest.read(pdir)
    if not force and old and old.get("status") == "complete" and old.get("fingerprint") == fp \
            and _outputs_intact(pdir, old):
        _say(f"{pdir.name}: up to date (inputs and parameters unchanged) — skipped; use --force to re-run")
        return old

    if old and (force or old.get("fingerprint") != fp) and pdir.exists():
        # Resumable state (translation records, evaluation rows, training checkpoints) belongs to the settings
        # that wrote it: a changed phase starts clean. An interrupted run with unchanged settings resumes.
        why = "--force" if force else "parameters, notebook, code or inputs changed"
        _say(f"{pdir.name}: {why} — starting this phase from a clean folder")
        shutil.rmtree(pdir)
    pdir.mkdir(parents=True, exist_ok=True)
    nb_out = pdir / f"{pdir.name}.ipynb"
    m = {"phase": phase, "status": "running", "notebook": str(nb_in.relative_to(paths.project_root())),
         "executed_notebook": nb_out.name, "parameters": parameters, "fingerprint": fp,
         "recipe": str(recipe.path), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
         "packages": manifest.package_versions(), "git": manifest.git_commit(), "environment": manifest.environment()}
    write_json(pdir / "manifest.json", m)
    # a stale "complete" from an earlier run must not survive a re-run that fails
    if (pdir / "phase.json").exists():
        (pdir / "phase.json").unlink()
    _say(f"{pdir.name}: running {m['notebook']} → {nb_out}")
    t0 = time.time()
    error = None
    os.environ.setdefault("MATHCODE_CWD", os.getcwd())      # user files (custom benchmarks) resolve from here
    saved_headless = os.environ.get(progress.HEADLESS_ENV)
    os.environ[progress.HEADLESS_ENV] = "1"          # the kernel inherits it: text bars on stdout, not widgets
    try:
        with _streaming(pdir.name, _PROGRESS):
            pm.execute_notebook(str(nb_in), str(nb_out), parameters=parameters, kernel_name="python3",
                                cwd=str(paths.project_root()), progress_bar=_progress_bar(pdir.name),
                                log_output=_PROGRESS, report_mode=False, **kernels.papermill_kwargs())
    except pm.PapermillExecutionError as e:
        error = {"type": e.ename, "message": _clean(e.evalue), "cell_index": e.cell_index,
                 "execution_count": e.exec_count}
    except Exception as e:                                    # kernel died, notebook unreadable, ...
        error = {"type": type(e).__name__, "message": _clean(str(e)), "cell_index": None,
                 "traceback": traceback.format_exc(limit=3)}
    finally:
        if saved_headless is None:
            os.environ.pop(progress.HEADLESS_ENV, None)
        else:
            os.environ[progress.HEADLESS_ENV] = saved_headless
    m["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    m["seconds"] = round(time.time() - t0, 1)
    st = _status(pdir)
    if error is None and st != "complete":
        error = {"type": "Incomplete", "message": f"notebook ended without P.finish() (phase.json status {st!r})",
                 "cell_index": None}
    _render_html(nb_out)
    if error:
        m.update(status="failed", error=error)
        write_json(pdir / "manifest.json", m)
        where = f"cell {error['cell_index']}" if error.get("cell_index") is not None else "the kernel"
        if error.get("execution_count"):
            where += f" (In [{error['execution_count']}])"
        raise PhaseFailed(f"phase '{phase}' failed in {m['notebook']} at {where}: {error['type']}: "
                          f"{error['message']} — see {nb_out}")
    pj = json.loads((pdir / "phase.json").read_text())
    m.update(status="complete", metrics=pj.get("metrics", {}), cpu_threads=pj.get("cpu_threads"),
             inputs=[manifest.describe_file(Path(f)) for f in pj.get("inputs", []) if Path(f).is_file()],
             outputs=manifest.phase_outputs(pdir))
    write_json(pdir / "manifest.json", m)
    _say(f"{pdir.name}: complete in {m['seconds']} s")
    return m


def _progress_bar(name: str):
    """papermill's per-cell bar (cells done / total, elapsed) on stderr, labelled with the phase."""
    if not _PROGRESS:
        return False
    return {"desc": f"[mathcode] {name}", "unit": "cell", "leave": True, "dynamic_ncols": True}


class _streaming:
    """While a phase runs, papermill's logger writes the notebook's output (prints, text progress bars, table
    reprs) to the terminal, prefixed with the phase; restored afterwards so library users keep their logging."""

    def __init__(self, name: str, on: bool):
        self.name, self.on = name, on

    def __enter__(self):
        if not self.on:
            return self
        pl = logging.getLogger("papermill")
        self.saved = (pl.level, pl.propagate)
        self.handler = _AboveTheBar()
        self.handler.addFilter(_PhaseOutput(self.name))
        pl.addHandler(self.handler)
        pl.setLevel(logging.INFO)
        pl.propagate = False
        return self

    def __exit__(self, *exc):
        if self.on:
            pl = logging.getLogger("papermill")
            pl.removeHandler(self.handler)
            pl.setLevel(self.saved[0])
            pl.propagate = self.saved[1]
        return False


class _AboveTheBar(logging.Handler):
    """Print log lines above papermill's progress bar (``tqdm.write``) instead of into the middle of it."""

    def emit(self, record):
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:
            self.handleError(record)


class _PhaseOutput(logging.Filter):
    """``  02_translation | <line>`` for each line a cell prints. Drops papermill's own chatter, shows a text
    progress bar at most every ``bar_every`` seconds (and when it completes), and cuts long tables."""

    CHATTER = ("Executing notebook with kernel", "Executing Cell", "Ending Cell", "Input Notebook",
               "Output Notebook", "Working directory", "Executing:")
    REPRS = ("<Figure size", "<matplotlib.", "<IPython.core.display", "<Axes", "<pandas.io.formats.style.Styler")
    MAX_LINES = 15

    def __init__(self, name: str, bar_every: float = 10.0):
        super().__init__()
        self.name, self.bar_every, self.last_bar = name, bar_every, 0.0

    def filter(self, record) -> bool:
        msg = record.getMessage()
        if msg.startswith(self.CHATTER):
            return False
        lines = [ln.rstrip() for ln in msg.replace("\r", "\n").splitlines()
                 if ln.strip() and not ln.startswith(self.REPRS)]
        bars = [ln for ln in lines if _is_bar(ln)]
        if bars and len(bars) == len(lines):
            now = time.monotonic()
            if now - self.last_bar < self.bar_every and "100%" not in bars[-1]:
                return False
            self.last_bar = now
            lines = bars[-1:]
        if not lines:
            return False
        if len(lines) > self.MAX_LINES:
            lines = lines[:self.MAX_LINES] + [f"... ({len(lines) - self.MAX_LINES} more lines in the executed notebook)"]
        record.msg, record.args = "\n".join(f"  {self.name} | {ln}" for ln in lines), None
        return True


def _is_bar(line: str) -> bool:
    import re
    return bool(re.search(r"\d+%\|.*\|\s*\d+/\d+", line))


def _parameter_files(parameters: dict) -> list[dict]:
    """Files named by parameters (corpus_file, custom_file, corpus_files, data_dir, ...): their content counts."""
    out = []
    for k, v in sorted(parameters.items()):
        if k == "run_dir" or not isinstance(v, (str, list)) or not v:
            continue
        for item in (v if isinstance(v, list) else [v]):
            p = paths.resolve_path(item) if isinstance(item, str) and "://" not in item and len(item) < 4096 else None
            if p is not None and p.is_file():
                out.append({"param": k, **manifest.describe_file(p)})
            elif p is not None and p.is_dir() and (k.endswith("_dir") or k.endswith("_file")):
                out += [{"param": k, **manifest.describe_file(f)} for f in sorted(p.rglob("*")) if f.is_file()][:200]
    return out


def _outputs_intact(pdir: Path, m: dict) -> bool:
    for o in m.get("outputs", []):
        f = pdir / o["path"]
        if not f.exists() or f.stat().st_size != o["bytes"]:
            return False
    return True


def _clean(s: str) -> str:
    import re
    s = re.sub(r"\x1b\[[0-9;]*m", "", s or "")
    return s.strip().splitlines()[-1] if s.strip() else s


def _render_html(nb: Path):
    if not nb.exists():
        return
    try:                                                     # one parameters cell, progress bars as final state
        notebook_tidy.tidy_file(nb)
    except Exception as e:
        log.warning("could not tidy %s: %s", nb, e)
    try:
        import nbformat
        from nbconvert import HTMLExporter
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(nb, as_version=4))
        nb.with_suffix(".html").write_text(body, encoding="utf-8")
    except Exception as e:                                   # the report links what exists; never fail a run here
        log.warning("could not render %s to HTML: %s", nb, e)
