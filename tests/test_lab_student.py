"""Notebook 02 as a student uses it: JupyterLab from the kit's environment, driven in Debian's Chromium by
Playwright (pointed at the system browser, no browser download), the notebook run cell by cell with Shift+Enter.

Checked: every code cell finishes without an error output; progress renders as Jupyter widgets (tqdm's bar under a
live frontend), not as frozen text; running the translation cell and the yield cell a second time changes
nothing — the records on disk and the yield table stay as they were (the translation resumes, it does not append).
Skipped only where no Chromium is installed (``.ci/run`` installs Debian's package)."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mathcode import paths
from mathcode.run import browser, kernels

pytestmark = pytest.mark.slow

NOTEBOOK = paths.project_root() / "notebooks" / "02_translation.ipynb"
# the student's edits of the parameters cell: a small corpus of their own, a tiny run
SMALL = dict(max_passages=2, max_new_tokens=24, cpu_threads=1, sandbox_workers=1, docs_per_chunk=4)
CORPUS = [
    {"id": "a", "source": "drills", "text": "Each crate has 6 bottles.\n\nFive crates hold 6*5 = 30 bottles."},
    {"id": "b", "source": "latex", "text": "Let $x = 3$.\n\nThen $3^2 + 1 = 10$."},
    {"id": "c", "source": "prose", "text": "This paragraph has no computation in it."},
]
# a cell's outputs, as the page shows them
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
WIDGET_BAR = ".jp-OutputArea-output .widget-hprogress"
TEXT_BAR = "%|"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _student_notebook(root: Path) -> Path:
    """Notebook 02 with its parameters cell edited the way the notebook's comments ask (values after ``=``)."""
    corpus = root / "my_corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    nb = json.loads(NOTEBOOK.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {"run_dir": str(root / "run"), "corpus_file": str(corpus), **SMALL}
    lines = "".join(cell["source"]).splitlines()
    for i, line in enumerate(lines):
        name = line.split("=", 1)[0].split(":", 1)[0].strip()
        if name in values:
            lines[i] = f"{name} = {values.pop(name)!r}"
    assert not values, f"notebook 02 has no parameter(s) {sorted(values)}"
    cell["source"] = "\n".join(lines)
    out = root / NOTEBOOK.name
    out.write_text(json.dumps(nb, indent=1))
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free port, its root a folder holding the student's notebook; its settings (no
    windowed rendering, so every cell is in the page; no news fetch) in its own folders, not the user's."""
    chrome = browser.find_chromium()
    if not chrome:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    root = tmp_path_factory.mktemp("lab")
    nb = _student_notebook(root)
    settings = root / ".lab-settings"
    for ext, name, body in [("@jupyterlab/notebook-extension", "tracker", {"windowingMode": "none"}),
                            ("@jupyterlab/apputils-extension", "notification", {"fetchNews": "false"})]:
        (settings / ext).mkdir(parents=True, exist_ok=True)
        (settings / ext / f"{name}.jupyterlab-settings").write_text(json.dumps(body))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".lab-workspaces"),
           "PYTHONPATH": os.pathsep.join([str(paths.project_root() / "lib"), os.environ.get("PYTHONPATH", "")])}
    env.pop(progress_env(), None)          # a student's kernel has a frontend: widget bars, not headless text
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
                             *kernels.lab_args()],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        import urllib.request
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root, "notebook": nb, "chrome": chrome}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def progress_env() -> str:
    from mathcode import progress
    return progress.HEADLESS_ENV


def _cells(page):
    return page.locator(".jp-Notebook .jp-Cell")


def _select(page, i: int) -> None:
    """Make cell ``i`` the active cell in command mode, as a student does: click its prompt, or, where something
    covers it, walk there with the arrow keys."""
    cell = _cells(page).nth(i)
    if "jp-mod-active" not in (cell.get_attribute("class") or ""):
        try:
            cell.locator(".jp-InputPrompt").click(timeout=5_000)
        except Exception:
            page.keyboard.press("Escape")
            for _ in range(len(_cells(page).all())):
                active = page.evaluate("[...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                                       ".findIndex(c => c.classList.contains('jp-mod-active'))")
                if active == i:
                    break
                page.keyboard.press("ArrowDown" if active < i else "ArrowUp")
    page.keyboard.press("Escape")
    assert "jp-mod-active" in (cell.get_attribute("class") or ""), f"could not select cell {i}"


def _run_cell(page, i: int, timeout_s: float = 600) -> str:
    """Select cell ``i``, press Shift+Enter, wait until it has finished; return its output text."""
    cell = _cells(page).nth(i)
    _select(page, i)
    page.keyboard.press("Shift+Enter")
    if "jp-CodeCell" in (cell.get_attribute("class") or ""):
        prompt = cell.locator(".jp-InputPrompt")
        start = time.time()
        retried = False
        while True:                                   # "[ ]:" not sent, "[*]:" running or queued, "[n]:" done
            text = prompt.inner_text().strip()
            if text.startswith("[") and text[1:-2].strip().isdigit():
                break
            if text.replace(" ", "").replace("\xa0", "") == "[]:" and time.time() - start > 60 and not retried:
                # never queued: the key press was lost by a renderer starved of CPU; press it again
                # (a cell that ran shows [*] or [n], so this never runs a cell twice)
                retried = True
                _select(page, i)
                page.keyboard.press("Shift+Enter")
            assert time.time() - start < timeout_s, f"cell {i} not finished after {timeout_s} s (prompt {text!r})"
            time.sleep(1.0)
        page.wait_for_timeout(300)                    # the last output messages arrive after the reply
    return cell.locator(".jp-OutputArea").inner_text() if cell.locator(".jp-OutputArea").count() else ""


def _source(page, i: int) -> str:
    return _cells(page).nth(i).locator(".jp-InputArea-editor").inner_text()


def test_notebook_02_cell_by_cell_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    run = lab["root"] / "run" / "02_translation"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=lab["chrome"], args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(300_000)         # other load on the machine can starve the renderer for minutes
            shot = lab["root"] / "lab-last-screen.png"
            page.goto(f"{lab['url']}/lab/tree/{lab['notebook'].name}?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # the kernel is started and idle before the first cell runs
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            page.locator("#jp-main-statusbar", has_text="| Idle").wait_for(timeout=300_000)   # kernel connected
            n = len(json.loads(lab["notebook"].read_text())["cells"])
            # Lab attaches the cells in batches after the first paint: every cell is in the page before any runs
            page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {n}",
                                   timeout=120_000)
            outputs = []
            for i in range(n):
                outputs.append(_run_cell(page, i))
                errors = _cells(page).nth(i).locator(ERROR_OUTPUT)
                assert errors.count() == 0, f"cell {i} raised:\n{errors.first.inner_text()[-2000:]}"
            assert (run / "phase.json").exists() and json.loads((run / "phase.json").read_text())["status"] == "complete"

            # progress as widgets: the translation cell's bar is a live ipywidgets progress bar, not frozen text
            translate = next(i for i in range(n) if "steps.translate_passages(" in _source(page, i))
            assert _cells(page).nth(translate).locator(WIDGET_BAR).count() >= 1, outputs[translate]
            assert not any(TEXT_BAR in o for o in outputs), [o for o in outputs if TEXT_BAR in o]

            # running a cell twice changes nothing: the translation resumes (no duplicate or lost record) and the
            # yield table it feeds reads the same
            yield_cell = next(i for i in range(n) if "figures.funnel(" in _source(page, i))
            before = {f: (run / f).read_bytes() for f in ("blocks.jsonl", "passages.jsonl", "replies.jsonl")}
            _run_cell(page, translate)
            again = _run_cell(page, yield_cell)
            for cell in (translate, yield_cell):
                errors = _cells(page).nth(cell).locator(ERROR_OUTPUT)
                assert errors.count() == 0, f"cell {cell}, run twice, raised:\n{errors.first.inner_text()[-2000:]}"
            for f, data in before.items():
                assert (run / f).read_bytes() == data, f"{f} changed when the cell ran a second time"
            assert again == outputs[yield_cell]
            # the Lab's kernel talks IPC like papermill's: ipykernel's TCP warning never reaches a student's log
            assert "without encryption" not in (lab["root"] / "lab.log").read_text()
        except BaseException:
            try:                                      # what the student would have seen when it went wrong
                page.screenshot(path=str(shot), timeout=15_000)
                print(f"screenshot of the Lab at the failure: {shot}")
            except Exception as e:
                print(f"no screenshot of the Lab at the failure ({type(e).__name__})")
            raise
        finally:
            b.close()
