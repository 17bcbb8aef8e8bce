"""The runner on a miniature project: real papermill, real kernels, real manifests and report.

The four notebooks here are tiny stand-ins for the phase notebooks (the real ones are exercised in
test_end_to_end.py); they use the same mathcode.phase API so that failures, skips and missing inputs
are tested in seconds.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import mini_settings

from mathcode.run import config, runner

from mathcode.run import params

HERE = Path(__file__).parent
NAMES = ["01_data_sampling", "02_translation", "03_qlora_pretraining", "04_evaluation"]
PHASES = ["data", "translation", "pretraining", "evaluation"]
UP = {"translation": "data", "pretraining": "translation", "evaluation": "pretraining"}


def _nb(phase: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(mini_settings.RUNNER[phase].parameters_cell())
    p.metadata["tags"] = ["parameters"]
    up = UP.get(phase)
    body = [f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport mini_settings\nimport mathcode.phase as phase\n"
            f"P = phase.start(mini_settings.RUNNER[{phase!r}], globals())"]
    if up:
        body.append(f"src = P.require({up!r}, 'rows.jsonl')\nprev = open(src).read().splitlines()")
    else:
        body.append("prev = []")
    body.append("import json\nif fail:\n    raise ValueError('planted failure')\n"
                "with open(P.path('rows.jsonl'), 'w') as fh:\n"
                "    for i in range(n_rows + len(prev)):\n        fh.write(json.dumps({'i': i}) + '\\n')")
    body.append("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots()\nax.plot(range(n_rows))\nP.save_figure(fig, 'line', 'a line')")
    body.append("P.finish(rows=n_rows + len(prev))")
    nb.cells = [nbformat.v4.new_markdown_cell("# mini"), p] + [nbformat.v4.new_code_cell(b) for b in body]
    return nb


@pytest.fixture()
def mini(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    for name, phase in zip(NAMES, PHASES):
        nbformat.write(_nb(phase), tmp_path / "notebooks" / f"{name}.ipynb")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mini.yaml").write_text(
        "name: mini\nmodel: embedded:smollm2-135m-instruct\nrun_dir: outputs/mini\n"
        "phases:\n  data: {n_rows: 4}\n  translation: {}\n")
    monkeypatch.setenv("MATHCODE_ROOT", str(tmp_path))
    monkeypatch.setattr(params, "SETTINGS", mini_settings.RUNNER)
    return tmp_path


def _manifest(root, key):
    return json.loads((root / "outputs/mini" / key / "manifest.json").read_text())


@pytest.mark.slow
def test_runs_all_phases_writes_manifests_and_report_then_skips(mini):
    runner.run("configs/mini.yaml")
    run = mini / "outputs/mini"
    for key in ["01_data", "02_translation", "03_pretraining", "04_evaluation"]:
        m = _manifest(mini, key)
        assert m["status"] == "complete"
        assert m["packages"]["papermill"] and "commit" in m["git"]
        outs = {o["path"]: o for o in m["outputs"]}
        assert outs["rows.jsonl"]["rows"] > 0 and len(outs["rows.jsonl"]["sha256"]) == 64
        assert (run / key / f"{key}.ipynb").exists() and (run / key / f"{key}.html").exists()
    # phase 2 read phase 1's 4 rows (recipe value, not the notebook default) and recorded the input
    m2 = _manifest(mini, "02_translation")
    assert m2["metrics"]["rows"] == 4 + 3
    assert m2["inputs"][0]["path"].endswith("01_data/rows.jsonl")
    html = (run / "report.html").read_text()
    assert "data:image/png;base64" in html and "02_translation/02_translation.html" in html

    started = {k: _manifest(mini, k)["started"] for k in ["01_data", "04_evaluation"]}
    runner.run("configs/mini.yaml")                       # nothing changed: all skipped
    assert {k: _manifest(mini, k)["started"] for k in started} == started
    runner.run("configs/mini.yaml", overrides={"pretraining.n_rows": 5})   # phase 3 and 4 re-run
    assert _manifest(mini, "01_data")["started"] == started["01_data"]
    assert _manifest(mini, "03_pretraining")["metrics"]["rows"] == 5 + 7
    assert _manifest(mini, "04_evaluation")["metrics"]["rows"] == 3 + 12


@pytest.mark.slow
def test_failing_cell_marks_failed_names_cell_and_stops(mini, capsys):
    with pytest.raises(runner.PhaseFailed) as e:
        runner.run("configs/mini.yaml", overrides={"translation.fail": True})
    msg = str(e.value)
    assert "02_translation.ipynb" in msg and "cell" in msg and "planted failure" in msg
    m = _manifest(mini, "02_translation")
    assert m["status"] == "failed" and m["error"]["type"] == "ValueError"
    assert not (mini / "outputs/mini/03_pretraining").exists()       # later phases did not start
    # the CLI says it in one line and exits non-zero
    # (in this process: the miniature project's settings classes are patched into mathcode.run.params here)
    from mathcode import cli
    rc = cli.main(["run", "--config", "configs/mini.yaml", "--phases", "translation", "-p", "translation.fail=true"])
    err = capsys.readouterr().err
    assert rc != 0 and "02_translation.ipynb" in err and "planted failure" in err


@pytest.mark.slow
def test_phase_without_predecessor_fails_with_remedy(mini):
    with pytest.raises(runner.PhaseFailed) as e:
        runner.run("configs/mini.yaml", phases=["pretraining"])
    assert "run phase 'translation' first" in str(e.value)
    assert _manifest(mini, "03_pretraining")["status"] == "failed"


@pytest.mark.slow
def test_papermill_direct_with_bad_parameter_type_fails_in_one_line(mini, tmp_path):
    r = subprocess.run([sys.executable, "-m", "papermill", str(mini / "notebooks/01_data_sampling.ipynb"),
                        str(tmp_path / "out.ipynb"), "-p", "n_rows", "many", "-p", "run_dir", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "'n_rows'" in r.stderr and "must be int" in r.stderr


def test_recipe_validation_names_the_key_before_any_work(mini):
    bad = {
        "unknown top-level": ("name: x\nmodel: embedded:smollm2-135m-instruct\nlearning_rate: 3\n", "'learning_rate'"),
        "unknown phase key": ("model: embedded:smollm2-135m-instruct\nphases:\n  data: {n_rowz: 3}\n", "phases.data.n_rowz"),
        "wrong type": ("model: embedded:smollm2-135m-instruct\nphases:\n  data: {n_rows: lots}\n", "phases.data.n_rows"),
        "unknown phase": ("model: embedded:smollm2-135m-instruct\nphases:\n  finetune: {}\n", "phases.finetune"),
        "model missing": ("name: x\n", "'model'"),
        "bad embedded": ("model: embedded:gpt-17\n", "embedded:gpt-17"),
        "common per phase": ("model: embedded:smollm2-135m-instruct\nphases:\n  data: {seed: 1}\n", "phases.data.seed"),
    }
    for what, (text, needle) in bad.items():
        f = mini / "configs" / "bad.yaml"
        f.write_text(text)
        with pytest.raises(config.ConfigError) as e:
            runner.run("configs/bad.yaml")
        assert needle in str(e.value), (what, str(e.value))
        assert "bad.yaml" in str(e.value)
    assert not (mini / "outputs").exists()                # nothing started
    with pytest.raises(config.ConfigError, match="not found"):
        config.load("configs/missing.yaml")


def test_params_are_read_from_the_notebook(mini):
    d = params.defaults("data")
    assert d["n_rows"] == 3 and d["fail"] is False
    assert params.docs("data")["n_rows"] == "rows to write"
    with pytest.raises(params.ParameterError, match="must be int"):
        params.check("data", {"n_rows": 2.5})
    params.check("data", {"n_rows": 7, "fail": True})


def test_unknown_model_offline_fails_before_any_phase(mini):
    (mini / "configs" / "hub.yaml").write_text("name: hub\nmodel: some-org/not-a-cached-model\n")
    r = subprocess.run([sys.executable, "-m", "mathcode", "run", "--config", "configs/hub.yaml"],
                       capture_output=True, text=True, cwd=mini, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2
    assert "some-org/not-a-cached-model" in r.stderr and "embedded:smollm2-135m-instruct" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1                       # one line: cause and remedy
    assert not (mini / "outputs").exists()


def test_missing_config_file_is_one_line(mini):
    r = subprocess.run([sys.executable, "-m", "mathcode", "run", "--config", "configs/nope.yaml"],
                       capture_output=True, text=True, cwd=mini)
    assert r.returncode == 2 and "configs/nope.yaml" in r.stderr and len(r.stderr.strip().splitlines()) == 1
