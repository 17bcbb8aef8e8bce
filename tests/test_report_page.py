"""The pages a teacher projects: report.html's first screen (the method in two lines and its figure), numbers with
their units and sizes, figures whose small shares are visible and whose text has no identifiers, captions that name
the colours the lines really have. A real Chromium at 1024x768 checks the first screen (skipped without one)."""
from __future__ import annotations

import json

import matplotlib
import pytest

matplotlib.use("Agg")

from mathcode import figure_text  # noqa: E402
from mathcode.run import report, report_story as S  # noqa: E402
from mathcode.train import figures as train_figures  # noqa: E402
from test_report_story import _run  # noqa: E402


def _with_nll_and_recipe(run, config="/tmp/tmpabc123/clone/configs/demo.yaml"):
    """The fabricated run of test_report_story plus phase 4's NLL probe and a recipe written from a temp clone."""
    (run / "recipe.json").write_text(json.dumps({"config": config, "model": "embedded:smollm2-135m-instruct"}))
    (run / "04_evaluation/tables/nll.csv").write_text(
        "model,benchmark,n,tokens,nll_per_token,ci_low,ci_high\n"
        "base,gsm8k,4,512,2.23,2.1,2.4\nbase+adapter,gsm8k,4,512,2.13,2.0,2.3\n")
    (run / "04_evaluation/nll.jsonl").write_text("".join(
        json.dumps({"model": m, "benchmark": "gsm8k", "item_id": i, "nll_mean": v}) + "\n"
        for m, vals in (("base", [2.3, 2.2, 2.1, 2.3]), ("base+adapter", [2.1, 2.1, 2.2, 2.1]))
        for i, v in enumerate(vals)))
    m = json.loads((run / "03_pretraining/manifest.json").read_text())
    m["metrics"].update(heldout_eval_tokens=1024, heldout_blocks=12)
    (run / "03_pretraining/manifest.json").write_text(json.dumps(m))
    return run


def test_numbers_carry_units_and_sizes(tmp_path):
    f = S.facts(_with_nll_and_recipe(_run(tmp_path)))
    text = " ".join(S.key_numbers(f))
    assert "On 1,024 held-out tokens" in text and "loss (nats per token) went from 2.500 to 2.490" in text
    assert "training loss (nats per token) went from 2.81" in text
    # the gold-solution NLL probe, the one measurable result at this scale, is in the summary
    assert "went from 2.23 (base) to 2.13 nats per token (base+adapter)" in text
    assert "lower on 3 of 4 solutions" in text and "512 solution tokens" in text
    # the translated share said with the training-set total the figure shows
    assert "of the 130,000-token training set, of which 300 tokens (0.23%) are translated code" in text


def test_older_runs_get_the_heldout_size_from_the_block_counts(tmp_path):
    run = _run(tmp_path)
    m = json.loads((run / "03_pretraining/manifest.json").read_text())
    m["metrics"]["heldout_blocks"] = 12                            # no heldout_eval_tokens; the default cap is 8
    (run / "03_pretraining/manifest.json").write_text(json.dumps(m))
    assert S.heldout_tokens(S.facts(run)) == 8 * 128


def test_first_screen_is_the_definition_and_the_method_figure(tmp_path):
    html = report.write_report(_with_nll_and_recipe(_run(tmp_path))).read_text()
    body = html[html.index("<body>"):]
    d, fig, summary = body.index("class='definition'"), body.index("alt='the method in one figure'"), \
        body.index("id='summary'")
    assert d < fig < summary                                        # nothing between the title and the method
    assert "/tmp" not in body                                       # the recipe shown relative, never a temp clone
    assert "recipe <code>demo.yaml</code>" in body


def test_report_first_screen_in_chromium_at_1024x768(tmp_path):
    """The definition and the whole method figure are on the first screen of a projector."""
    from mathcode.run import browser
    chrome = browser.find_chromium()
    if not chrome:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    page_file = report.write_report(_with_nll_and_recipe(_run(tmp_path)))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chrome, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = b.new_page(viewport={"width": 1024, "height": 768})
            page.goto(page_file.as_uri())
            for sel in (".definition", "#method img"):
                box = page.locator(sel).bounding_box()
                assert box and box["y"] >= 0 and box["y"] + box["height"] <= 768, (sel, box)
            assert page.evaluate("document.querySelector('#method img').naturalWidth") > 0
        finally:
            b.close()


def test_figure_text_has_no_identifiers():
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    df = pd.DataFrame({"source": ["champ_solutions", "rg_gsm_symbolic"], "tokens_per_s": [3.0, 4.0],
                       "stage": ["after_quality", "mixture"]})
    fig, ax = plt.subplots()
    sns.barplot(df, x="source", y="tokens_per_s", hue="stage", ax=ax)
    ax.set_title("scores of champ_solutions, $x_1$ kept")
    assert len(figure_text.snake_case_left(fig)) >= 4
    figure_text.tidy(fig)
    assert figure_text.snake_case_left(fig) == []
    assert [t.get_text() for t in ax.get_xticklabels()] == ["champ solutions", "rg gsm symbolic"]
    assert ax.get_title() == "scores of champ solutions, $x_1$ kept"           # mathtext subscripts stay
    plt.close(fig)


def test_a_small_part_of_the_training_set_is_visible_and_labelled():
    """246 translated tokens beside 162,442 basic ones: a log axis and a label with count and share."""
    fig = train_figures.parts_bar({"basic": 162_442, "translated": 246}, block_size=128)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.texts]
    assert any("246 tokens (0.15%)" in t for t in labels), labels
    assert "162,688 tokens in 1,271 blocks of 128" in ax.get_title()
    bars = {round(p.get_width()): p for p in ax.patches}
    lo, hi = ax.get_xlim()
    import math
    # on the axis as drawn, the small bar spans a visible part of the width (a linear axis gives it 0.15%)
    assert (math.log(bars[246].get_width()) - math.log(lo)) / (math.log(hi) - math.log(lo)) > 0.2


def test_loss_caption_names_the_colours_the_lines_have():
    from matplotlib.colors import to_hex
    rows = [{"step": 1, "loss": 2.9}, {"step": 2, "eval_loss": 2.6}, {"step": 2, "loss": 2.7},
            {"step": 3, "eval_loss": 2.5}, {"step": 3, "loss": 2.6}]
    fig = train_figures.loss_curves(rows[1:2] + rows[:1] + rows[2:], before_loss=2.7)   # held-out row first
    ax = fig.axes[0]
    leg = ax.get_legend()
    drawn = {t.get_text(): to_hex(h.get_color()) for t, h in zip(leg.get_texts(), leg.legend_handles)}
    # the data lines themselves (not only the legend) have these colours
    line_colours = {to_hex(ln.get_color()) for ln in ax.get_lines()}
    for split, name in train_figures.LOSS_COLOURS.items():
        assert drawn[split] == train_figures._HEX[name] and train_figures._HEX[name] in line_colours
        assert f"({name})" in train_figures.loss_caption() and name in ax.get_title()
    assert ax.get_ylabel() == "loss (nats per token)"
