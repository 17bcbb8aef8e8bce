"""The page checker of mathcode.run.browser: each rule can fail (unit tests on small pages), and a real headless
Chromium renders and screenshots a page (skipped only where no Chromium can be had). The pages of a whole run are
checked in tests/test_end_to_end.py::test_pages_in_a_real_browser."""
from __future__ import annotations

import base64
import io

import pytest

from mathcode.run import browser


def _png(blank: bool) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(2, 1.5))
    if blank:
        ax.axis("off")
    else:
        ax.plot([0, 1, 2], [0, 2, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


GOOD = ("<html><body><h1>ok</h1><img src=\"data:image/png;base64,{img}\"><table><thead><tr><th>a</th></tr></thead>"
        "<tbody><tr><td>1</td></tr></tbody></table></body></html>")


def test_a_clean_page_passes():
    c = browser.check_dom(GOOD.format(img=_png(False)), "good")
    assert c.ok, c.problems
    assert (c.images, c.tables) == (1, 1)


@pytest.mark.parametrize("page, problem", [
    (GOOD.replace("<h1>ok</h1>", "<pre>Traceback (most recent call last):\n  x</pre>"), "traceback"),
    (GOOD.replace("<h1>ok</h1>", "<div data-mime-type=\"application/vnd.jupyter.stderr\">TqdmWarning</div>"), "stderr"),
    (GOOD.replace("<h1>ok</h1>", "<pre>PosixPath('/tmp/x')</pre>"), "PosixPath"),
    (GOOD.replace("<tbody><tr><td>1</td></tr></tbody>", ""), "no rows"),
    (GOOD.replace("<h1>ok</h1>", "<span class=\"status failed\">failed</span>"), "failed"),
])
def test_each_rule_catches_its_fault(page, problem):
    c = browser.check_dom(page.format(img=_png(False)), "bad")
    assert not c.ok and any(problem in p for p in c.problems), c.problems


def test_an_empty_figure_is_caught():
    c = browser.check_dom(GOOD.format(img=_png(True)), "blank")
    assert any("empty" in p for p in c.problems), c.problems


def test_missing_expected_content_is_named():
    c = browser.check_dom(GOOD.format(img=_png(False)), "report", browser.REPORT_EXPECT)
    assert len(c.problems) == len(browser.REPORT_EXPECT)
    assert any("worked example" in p for p in c.problems)


def test_real_chromium_renders_and_screenshots(tmp_path):
    chrome = browser.find_chromium()
    if not chrome:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    page = tmp_path / "p.html"
    page.write_text(GOOD.format(img=_png(False)).replace("<h1>ok</h1>", "<h1 id='x'>rendered by chromium</h1>"))
    dom = browser.render_dom(chrome, page.as_uri())
    assert "rendered by chromium" in dom and 'id="x"' in dom          # the DOM as the browser serialised it
    assert browser.check_dom(dom, "p").ok
    shot = browser.screenshot(chrome, page.as_uri(), tmp_path / "shot.png", (800, 600))
    assert shot.exists() and not browser.png_is_blank(shot.read_bytes())


def _fake_chromium(tmp_path, hangs: int):
    """A stand-in browser that, for its first ``hangs`` calls, leaves a child holding the output pipe and sleeps
    (a hung renderer); later calls print a page. Counts its calls in a file."""
    import stat
    count = tmp_path / "calls"
    exe = tmp_path / "chromium"
    exe.write_text(f"""#!/bin/sh
n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}
if [ $n -le {hangs} ]; then sleep 300 & sleep 300; fi
echo "<html><body>rendered</body></html>"
""")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe), count


def test_a_hung_browser_call_is_killed_with_its_children_and_tried_again(tmp_path):
    import time
    exe, count = _fake_chromium(tmp_path, hangs=1)
    t = time.monotonic()
    dom = browser.render_dom(exe, "file:///x.html", timeout=2)
    assert "rendered" in dom and count.read_text().strip() == "2"
    assert time.monotonic() - t < 30, "the hung call's children must be killed, not waited for"


def test_a_browser_that_keeps_hanging_raises_a_clear_error(tmp_path):
    exe, count = _fake_chromium(tmp_path, hangs=5)
    with pytest.raises(TimeoutError, match=r"ran past 1 s 2 times on file:///x.html.*larger timeout"):
        browser.render_dom(exe, "file:///x.html", timeout=1)
    assert count.read_text().strip() == "2"
