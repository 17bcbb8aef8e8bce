"""Command line: ``python -m mathcode {run,validate,params,prepare-model,report,check-pages}``."""
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mathcode", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the phase notebooks of a recipe with papermill")
    r.add_argument("--config", required=True, help="recipe YAML, e.g. configs/demo.yaml")
    r.add_argument("--run-dir", help="output folder (default: the recipe's run_dir, outputs/<name>)")
    r.add_argument("--phases", nargs="+", help="subset: data translation pretraining evaluation")
    r.add_argument("--force", action="store_true", help="re-run phases even when up to date")
    r.add_argument("--quiet", action="store_true", help="do not stream the notebooks' output and progress")
    r.add_argument("-p", "--param", action="append", metavar="PHASE.KEY=VALUE",
                   help="override a recipe value (YAML syntax), e.g. -p pretraining.max_steps=5")
    r.add_argument("--rehearse", action="store_true",
                   help="run every phase of the recipe at toy scale on CPU (tiny model of the recipe's architecture, "
                        "local stand-ins for Hub sources, transformers instead of vLLM) into outputs/<name>-rehearsal")
    v = sub.add_parser("validate", help="validate a recipe without running anything")
    v.add_argument("--config", required=True)
    v.add_argument("-p", "--param", action="append", metavar="PHASE.KEY=VALUE")
    v.add_argument("--rehearse", action="store_true", help="validate the rehearsal of the recipe and list what it "
                                                           "replaces (prepares the tiny models; runs nothing)")
    p = sub.add_parser("params", help="list a phase's settings (defaults, allowed values, help), or write the "
                                      "notebooks' parameters cells from them")
    p.add_argument("phase", nargs="?", choices=["data", "translation", "pretraining", "evaluation"])
    p.add_argument("--write-cells", action="store_true",
                   help="rewrite every notebook's parameters cell from its phase's settings class")
    m = sub.add_parser("prepare-model", help="resolve a model spec now (converts/caches the embedded model)")
    m.add_argument("--model", default="embedded:smollm2-135m-instruct")
    m.add_argument("--cache-dir")
    rep = sub.add_parser("report", help="(re)write run_dir/report.html")
    rep.add_argument("run_dir")
    cp = sub.add_parser("check-pages", help="render report.html and the executed notebooks in headless Chromium, "
                                            "check them, save screenshots under run_dir/screenshots")
    cp.add_argument("run_dir")
    a = ap.parse_args(argv)

    from mathcode.run import config

    from mathcode.run import params
    from mathcode.models import ModelSpecError
    from mathcode.phase import MissingInputError
    from mathcode.run.runner import PhaseFailed
    from mathcode.run.ablation import AblationError
    from mathcode.run.rehearse import RehearsalError
    try:
        if a.cmd == "run":
            if a.rehearse:
                from mathcode.run.rehearse import run
            else:
                from mathcode.run.runner import run
            run(a.config, run_dir=a.run_dir, phases=a.phases, force=a.force, overrides=_parse_overrides(a.param),
                progress=not a.quiet)
        elif a.cmd == "validate":
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
            from mathcode.run.plan import describe
            print("\n".join(describe(rec)))
        elif a.cmd == "params":
            if a.write_cells:
                for f in params.write_parameter_cells():
                    print(f"wrote the parameters cell of {f}")
                return 0
            if not a.phase:
                ap.error("params: name a phase (data, translation, pretraining, evaluation) or give --write-cells")
            cls = params.settings_class(a.phase)
            d, docs, allowed = cls.defaults(), cls.docs(), cls.enumerated()
            print(f"# {cls.__module__}.{cls.__name__} (notebook {cls.NOTEBOOK})")
            for k, val in d.items():
                extra = f" [one of: {', '.join(map(str, allowed[k]))}]" if k in allowed else ""
                print(f"{k:28s} = {json.dumps(val):30s} # {docs.get(k, '')}{extra}")
        elif a.cmd == "prepare-model":
            from mathcode.models import resolve
            r = resolve(a.model, a.cache_dir)
            print(f"{a.model} -> {r.path} ({r.kind})")
        elif a.cmd == "report":
            from mathcode.run.report import write_report
            print(write_report(a.run_dir))
        elif a.cmd == "check-pages":
            from mathcode.run import browser
            from mathcode import paths
            if not browser.find_chromium():
                print("mathcode: error: no Chromium found (apt-get install chromium, or set MATHCODE_CHROMIUM)",
                      file=sys.stderr)
                return 2
            results = browser.check_run(paths.resolve_path(a.run_dir))
            print(browser.summary(results))
            return 0 if results and all(c.ok for c in results) else 1
    except (config.ConfigError, params.ParameterError, ModelSpecError, MissingInputError, PhaseFailed,
            AblationError, RehearsalError) as e:
        print(f"mathcode: error: {e}", file=sys.stderr)
        return 2 if not isinstance(e, (PhaseFailed, AblationError)) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
