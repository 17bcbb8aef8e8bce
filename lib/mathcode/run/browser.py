"""Look at a run's pages as a class would: report.html and every executed notebook's HTML, rendered by a real
headless Chromium, checked, and screenshotted under ``run_dir/screenshots/``.

Per page:
  * Chromium renders it (``--dump-dom``: the DOM after rendering) and takes two screenshots: the first screen at
    1024x768 (what a projector shows) and the whole page at 1024 wide;
  * **no error text**: no traceback, no stderr output box (nbconvert marks them ``application/vnd.jupyter.stderr``),
    no raw ``PosixPath(...)`` / ``<... object at 0x...>`` reprs, no phase marked failed, no report error paragraph
    (rejected translation blocks may quote an exception as data: that is content, not an error of the page);
  * **no empty figure**: every embedded PNG decodes and is not one flat colour, every ``<table>`` has body rows;
  * the report shows **the worked example** (a verified or rejected block in full) and the method figure.

Chromium: ``$MATHCODE_CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on PATH (Debian's
package ``chromium``; ``.ci/run`` installs it). Flags that work offline and as root are in ``FLAGS``.
"""
from __future__ import annotations

import base64
import html as _html
import io
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
         "--disable-sync", "--disable-default-apps", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--mute-audio", "--disable-component-update", "--disable-features=Translate,MediaRouter",
         "--run-all-compositor-stages-before-draw", "--virtual-time-budget=4000"]
FIRST_SCREEN = (1024, 768)
FULL_WIDTH = 1024

ERROR_PATTERNS = [
    (re.compile(r"Traceback \(most recent call last\)"), "a Python traceback"),
    (re.compile(r"application/vnd\.jupyter\.stderr"), "a stderr output box"),
    (re.compile(r"class=.err."), "an error paragraph of the report"),
    (re.compile(r"\bPosixPath\("), "a raw PosixPath(...) repr"),
    (re.compile(r"<(?:pandas|IPython|matplotlib)\.[\w.]+ (?:object )?at 0x"), "a raw object repr"),
    (re.compile(r"class=.status failed."), "a phase marked failed"),
]


def find_chromium() -> str | None:
    env = os.environ.get("MATHCODE_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


@dataclass
class PageCheck:
    page: str
    problems: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    images: int = 0
    tables: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _run(chrome: str, args: list[str], timeout: int, attempts: int = 2) -> subprocess.CompletedProcess:
    """One Chromium call in its own process group with a fresh profile.

    Headless Chromium renders these pages in a second or two, but on a loaded machine one call has been seen to hang
    past three minutes; the next call, with a new profile, went through. So a call that runs past ``timeout`` has
    its whole process tree killed (renderer and GPU processes hold the output pipes, so killing only the parent
    would leave ``communicate`` waiting) and is tried again, up to ``attempts`` times, before the error is raised.
    """
    for attempt in range(1, attempts + 1):
        with tempfile.TemporaryDirectory(prefix="mathcode-chromium-") as prof:
            cmd = [chrome, *FLAGS, f"--user-data-dir={prof}", *args]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    text=True, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=timeout)
                return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                if attempt == attempts:
                    raise TimeoutError(f"Chromium ran past {timeout} s {attempts} times on {args[-1]} "
                                       f"(flags {' '.join(args[:-1])}); pass a larger timeout to check_run") from None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def render_dom(chrome: str, url: str, timeout: int = 120) -> str:
    r = _run(chrome, [f"--window-size={FULL_WIDTH},{FIRST_SCREEN[1]}", "--dump-dom", url], timeout)
    return r.stdout


def screenshot(chrome: str, url: str, out: Path, size: tuple[int, int], timeout: int = 120) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(chrome, [f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url], timeout)
    return out


def png_is_blank(data: bytes) -> bool:
    """One flat colour (or unreadable): a figure with nothing drawn."""
    import numpy as np
    from matplotlib import image as mpimg
    try:
        a = mpimg.imread(io.BytesIO(data), format="png")
    except Exception:
        return True
    if a.size == 0:
        return True
    a = a[..., :3] if a.ndim == 3 else a
    return float(np.ptp(a)) < 0.02


def trim_bottom(png: Path, margin: int = 40) -> Path:
    """Cut the blank space under the page's last content (the height hint is generous)."""
    try:
        from PIL import Image
        import numpy as np
    except ImportError:
        return png
    if not png.exists():
        return png
    im = Image.open(png).convert("RGB")
    a = np.asarray(im)
    rows = np.where((a.max(axis=(1, 2)) - a.min(axis=(1, 2))) > 10)[0]
    if len(rows) and rows[-1] + margin < a.shape[0]:
        im.crop((0, 0, a.shape[1], int(rows[-1]) + margin)).save(png)
    return png


def _page_height_hint(dom: str) -> int:
    """A whole-page screenshot height from the page's content (Chromium's CLI cannot measure it): text lines,
    tables rows and figures, clamped to 1500..16000 px."""
    text = re.sub(r"<[^>]+>", "\n", dom)
    lines = sum(1 for ln in text.splitlines() if ln.strip())
    imgs = len(re.findall(r"<img\b", dom))
    return int(min(16000, max(1500, 22 * lines + 420 * imgs)))


def check_dom(dom: str, page: str, expect: list[tuple[str, str]] = ()) -> PageCheck:
    """The checks that need only the rendered DOM (unit-testable without a browser)."""
    c = PageCheck(page)
    if not dom.strip():
        c.problems.append("the browser rendered nothing")
        return c
    visible = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S | re.I)
    for pat, what in ERROR_PATTERNS:
        m = pat.search(visible)
        if m:
            ctx = _html.unescape(re.sub(r"<[^>]+>", " ", visible[max(0, m.start() - 120):m.end() + 120]))
            c.problems.append(f"{what}: …{' '.join(ctx.split())[:200]}…")
    for m in re.finditer(r"<img\b[^>]*\bsrc=\"data:image/png;base64,([^\"]+)\"", visible):
        c.images += 1
        if png_is_blank(base64.b64decode(m.group(1))):
            c.problems.append(f"figure {c.images} is empty (one flat colour)")
    for t in re.finditer(r"<table\b.*?</table>", visible, flags=re.S | re.I):
        c.tables += 1
        body_rows = len(re.findall(r"<tr\b", t.group(0))) - len(re.findall(r"<thead\b", t.group(0)))
        if body_rows < 1 or not re.search(r"<td\b", t.group(0)):
            c.problems.append(f"table {c.tables} has a header and no rows")
    for needle, what in expect:
        if needle not in visible:
            c.problems.append(f"missing: {what}")
    return c


REPORT_EXPECT = [("id=\"worked-example\"", "the worked example section"),
                 ("class=\"example ", "a translation block shown in full (verified or rejected)"),
                 ("id=\"method\"", "the method figure"), ("id=\"limitations\"", "the limitations box")]


def pages(run_dir: Path) -> list[tuple[Path, list]]:
    run_dir = Path(run_dir)
    out = []
    if (run_dir / "report.html").exists():
        out.append((run_dir / "report.html", REPORT_EXPECT))
    for key in ("01_data", "02_translation", "03_pretraining", "04_evaluation"):
        p = run_dir / key / f"{key}.html"
        if p.exists():
            out.append((p, []))
    return out


def check_run(run_dir, chrome: str | None = None, shots_dir=None, timeout: int = 180) -> list[PageCheck]:
    """Render and check every page of a run; screenshots go to ``run_dir/screenshots`` (or ``shots_dir``)."""
    chrome = chrome or find_chromium()
    if not chrome:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set MATHCODE_CHROMIUM)")
    run_dir = Path(run_dir).resolve()
    shots = Path(shots_dir) if shots_dir else run_dir / "screenshots"
    results = []
    for page, expect in pages(run_dir):
        url = page.resolve().as_uri()
        dom = render_dom(chrome, url, timeout)
        c = check_dom(dom, str(page.relative_to(run_dir)), expect)
        stem = page.stem
        first = screenshot(chrome, url, shots / f"{stem}-first-screen.png", FIRST_SCREEN, timeout)
        full = trim_bottom(screenshot(chrome, url, shots / f"{stem}-full.png", (FULL_WIDTH, _page_height_hint(dom)),
                                      timeout))
        for s in (first, full):
            if not s.exists() or png_is_blank(s.read_bytes()):
                c.problems.append(f"screenshot {s.name} is missing or blank")
            else:
                c.screenshots.append(str(s))
        results.append(c)
    return results


def summary(results: list[PageCheck]) -> str:
    lines = []
    for c in results:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.page}: {c.images} figures, {c.tables} tables"
                     + ("" if c.ok else "\n      " + "\n      ".join(c.problems)))
    return "\n".join(lines)
