"""Command line: ``python -m mathcode {run,validate,params,prepare-model,report,check-pages}``.

One function per subcommand (``cmd_<name>``), registered with its arguments in ``build_parser``; ``main`` only
parses, dispatches and turns the kit's own errors into one line on stderr (exit 2 for bad input, 1 for a failed run).
"""
from __future__ import annotations

import argparse
import json
import sys

import yaml


def _parse_overrides(items):
    out = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit(f"mathcode: -p expects KEY=VALUE (e.g. -p pretraining.max_steps=10), got {it!r}")
        k, v = it.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def cmd_run(a) -> int:
    """Run a recipe's phase notebooks (or its rehearsal) with papermill."""
    if a.rehearse:
        from mathcode.run.rehearse import run
    else:
        from mathcode.run.runner import run
    run(a.config, run_dir=a.run_dir, phases=a.phases, force=a.force, overrides=_parse_overrides(a.param),
        progress=not a.quiet)
    return 0


def cmd_validate(a) -> int:
    """Check a recipe (or its rehearsal) and print its plan; runs nothing."""
    from mathcode.run import config
    from mathcode.run.plan import describe
    if a.rehearse:
        from mathcode.run import rehearse
        rec, reh = rehearse.load(a.config, _parse_overrides(a.param))
        print("\n".join(rehearse.describe(reh)))
    else:
        rec = config.load(a.config, _parse_overrides(a.param))
    print(f"{rec.path}: valid recipe {rec.name!r} (model {rec.model}, phases: "
          f"{', '.join(rec.phases) or 'notebook defaults'})"
          + (f"; ablation: arms {', '.join(rec.ablation['arms'])} x seeds {rec.ablation['seeds']}"
             if rec.ablation else ""))
    print("\n".join(describe(rec)))
    return 0


def cmd_params(a) -> int:
    """List a phase's settings, or write every notebook's parameters cell from its settings class."""
    from mathcode.run import params
    if a.write_cells:
        for f in params.write_parameter_cells():
            print(f"wrote the parameters cell of {f}")
        return 0
    if not a.phase:
        a.parser.error("params: name a phase (data, translation, pretraining, evaluation) or give --write-cells")
    cls = params.settings_class(a.phase)
    d, docs, allowed = cls.defaults(), cls.docs(), cls.enumerated()
    print(f"# {cls.__module__}.{cls.__name__} (notebook {cls.NOTEBOOK})")
    for k, val in d.items():
        extra = f" [one of: {', '.join(map(str, allowed[k]))}]" if k in allowed else ""
        print(f"{k:28s} = {json.dumps(val):30s} # {docs.get(k, '')}{extra}")
    return 0


def cmd_prepare_model(a) -> int:
    """Resolve a model spec now, so that the first phase does not pay the conversion."""
    from mathcode.models import resolve
    r = resolve(a.model, a.cache_dir)
    print(f"{a.model} -> {r.path} ({r.kind})")
    return 0


def cmd_report(a) -> int:
    """(Re)write run_dir/report.html from the run's manifests and outputs."""
    from mathcode.run.report import write_report
    print(write_report(a.run_dir))
    return 0


def cmd_check_pages(a) -> int:
    """Render the report and executed notebooks in headless Chromium and check what a reader sees."""
    from mathcode import paths
    from mathcode.run import browser
    if not browser.find_chromium():
        print("mathcode: error: no Chromium found (apt-get install chromium, or set MATHCODE_CHROMIUM)",
              file=sys.stderr)
        return 2
    results = browser.check_run(paths.resolve_path(a.run_dir))
    print(browser.summary(results))
    return 0 if results and all(c.ok for c in results) else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m mathcode", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, func, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func, parser=p)
        return p

    r = add("run", cmd_run, "run the phase notebooks of a recipe with papermill")
    r.add_argument("--config", required=True, help="recipe YAML, e.g. configs/demo.yaml")
    r.add_argument("--run-dir", help="output folder (default: the recipe's run_dir, outputs/<name>)")
    r.add_argument("--phases", nargs="+", help="subset: data translation pretraining evaluation")
    r.add_argument("--force", action="store_true", help="re-run phases even when up to date")
    r.add_argument("--quiet", action="store_true", help="do not stream the notebooks' output and progress")
    r.add_argument("-p", "--param", action="append", metavar="PHASE.KEY=VALUE",
                   help="override a recipe value (YAML syntax), e.g. -p pretraining.max_steps=5")
    r.add_argument("--rehearse", action="store_true",
                   help="run every phase of the recipe at toy scale on CPU (tiny model of the recipe's architecture, "
                        "local stand-ins for Hub sources) into outputs/<name>-rehearsal")
    v = add("validate", cmd_validate, "validate a recipe without running anything")
    v.add_argument("--config", required=True)
    v.add_argument("-p", "--param", action="append", metavar="PHASE.KEY=VALUE")
    v.add_argument("--rehearse", action="store_true", help="validate the rehearsal of the recipe and list what it "
                                                           "replaces (prepares the tiny models; runs nothing)")
    p = add("params", cmd_params, "list a phase's settings (defaults, allowed values, help), or write the "
                                  "notebooks' parameters cells from them")
    p.add_argument("phase", nargs="?", choices=["data", "translation", "pretraining", "evaluation"])
    p.add_argument("--write-cells", action="store_true",
                   help="rewrite every notebook's parameters cell from its phase's settings class")
    m = add("prepare-model", cmd_prepare_model, "resolve a model spec now (converts/caches the embedded model)")
    m.add_argument("--model", default="embedded:smollm2-135m-instruct")
    m.add_argument("--cache-dir")
    rep = add("report", cmd_report, "(re)write run_dir/report.html")
    rep.add_argument("run_dir")
    cp = add("check-pages", cmd_check_pages, "render report.html and the executed notebooks in headless Chromium, "
                                             "check them, save screenshots under run_dir/screenshots")
    cp.add_argument("run_dir")
    return ap


def _user_errors():
    """The kit's own error types: each already names the file, key or parameter and what to write instead."""
    from mathcode.models import ModelSpecError
    from mathcode.phase import MissingInputError
    from mathcode.run import config, params
    from mathcode.run.ablation import AblationError
    from mathcode.run.rehearse import RehearsalError
    from mathcode.run.runner import PhaseFailed
    bad_input = (config.ConfigError, params.ParameterError, ModelSpecError, MissingInputError, RehearsalError)
    failed_run = (PhaseFailed, AblationError)
    return bad_input, failed_run


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    bad_input, failed_run = _user_errors()
    try:
        return a.func(a)
    except bad_input + failed_run as e:
        print(f"mathcode: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, failed_run) else 2


if __name__ == "__main__":
    sys.exit(main())
