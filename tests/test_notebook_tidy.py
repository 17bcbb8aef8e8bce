"""The executed notebook as stored: one parameters cell with the effective values, progress bars as final state."""
from __future__ import annotations

import nbformat

from mathcode.run import notebook_tidy

from mathcode import progress

PARAMS = ('run_dir = "outputs/lab"  # run folder\nmax_passages = 8  # passages to translate\n'
          'sources = ["a", "b"]  # where text comes from\nseed = 0  # seed')
INJECTED = 'run_dir = "/tmp/run"\nmax_passages = 12\nseed = 0\nextra_key = "x"\n'


def test_injected_values_fold_into_the_parameters_cell():
    src, changed = notebook_tidy.fold_parameters(PARAMS, INJECTED)
    lines = src.splitlines()
    assert lines[0].startswith('run_dir = "/tmp/run"  # set by the run; notebook default: "outputs/lab"; run folder')
    assert lines[1].startswith("max_passages = 12  # set by the run; notebook default: 8;")
    assert lines[2] == 'sources = ["a", "b"]  # where text comes from'       # not injected: unchanged
    assert lines[3] == "seed = 0  # seed"                                    # injected with the same value
    assert lines[4].startswith('extra_key = "x"  # set by the run')
    assert changed == ["max_passages", "run_dir", "extra_key"]
    ns = {}
    exec(src, ns)                                                             # still valid Python, same values
    assert ns["max_passages"] == 12 and ns["run_dir"] == "/tmp/run"


def test_tidy_removes_the_injected_cell_and_collapses_bars():
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]})
    inj = nbformat.v4.new_code_cell(INJECTED, metadata={"tags": ["injected-parameters"]})
    work = nbformat.v4.new_code_cell("x")
    work.outputs = [nbformat.v4.new_output("stream", name="stdout", text="translating:   0%|  | 0/3\r"),
                    nbformat.v4.new_output("stream", name="stdout", text="translating:  33%|# | 1/3\rtranslating: 100%|##| 3/3\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="done\n")]
    nb.cells = [p, inj, work]
    notebook_tidy.tidy(nb)
    assert len(nb.cells) == 2 and "injected-parameters" not in str(nb.cells[1].metadata)
    assert nb.cells[0].metadata["mathcode"]["folded_parameters"] == ["max_passages", "run_dir", "extra_key"]
    outs = nb.cells[1].outputs
    assert len(outs) == 1 and outs[0]["text"] == "translating: 100%|##| 3/3\ndone\n"


def test_collapse_keeps_what_a_terminal_shows():
    assert progress.collapse_carriage_returns("a\rbb\rccc\nnext") == "ccc\nnext"
    assert progress.collapse_carriage_returns("\x1b[A\rbar 100%\n") == "bar 100%\n"
    assert progress.collapse_carriage_returns("plain\ntext") == "plain\ntext"


def test_headless_bar_writes_stdout_text(monkeypatch, capsys):
    monkeypatch.setenv(progress.HEADLESS_ENV, "1")
    for _ in progress.bar(range(3), desc="work", unit="step"):
        pass
    out, err = capsys.readouterr()
    assert err == "" and "work: 100%" in progress.collapse_carriage_returns(out)
