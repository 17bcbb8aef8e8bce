"""The ablation: the interval and MDE with known answers and by simulation, the recipe block, the arm plumbing
and the comparison.

The orchestration is tested twice: on miniature phase notebooks (real papermill, real runner, seconds per phase)
and at smoke scale with the real notebooks and the embedded model (slow).
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import mini_settings
from mathcode.run import ablation, ablation_compare as ac, config, params, runner
from mathcode.util import read_jsonl


# --- the interval and the MDE: answers known in advance, and references computed another way -----------------
def test_identical_arms_give_the_point_zero():
    rng = np.random.default_rng(1)
    ref = rng.normal(2.0, 1.0, size=(50, 3))
    r = ac.contrast(ref, ref.copy())
    assert r["diff"] == 0 and r["ci_low"] == r["ci_high"] == 0 and r["mde"] == 0
    assert (r["n_items"], r["n_seeds"]) == (50, 3)


def test_runs_alone_give_welchs_interval():
    # no item noise at all: every item of a run has the run's value, so the comparison is two independent samples
    # of 3 and 4 run means -> exactly Welch's t interval (scipy's, computed another way)
    from scipy import stats
    rng = np.random.default_rng(2)
    m_ref, m_arm = rng.normal(1.0, 0.01, 3), rng.normal(1.02, 0.03, 4)
    r = ac.contrast(np.tile(m_ref, (40, 1)), np.tile(m_arm, (40, 1)))
    w = stats.ttest_ind(m_arm, m_ref, equal_var=False)
    assert r["diff"] == pytest.approx(m_arm.mean() - m_ref.mean())
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(w.confidence_interval(0.95)), rel=1e-9)
    assert r["df"] == pytest.approx(w.df) and r["run_share"] == pytest.approx(1.0)


def test_one_seed_per_arm_is_the_paired_t_over_items_and_says_so():
    from scipy import stats
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 300)
    arm = ref + 0.1 + rng.normal(0, 0.5, 300)
    r = ac.contrast(ref, arm)
    ci = stats.ttest_rel(arm, ref).confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9) and r["df"] == pytest.approx(299)
    assert not r["runs_known"]
    s = ac.sentence("math", "nll", "a", "b", {**r, "ci_low": 0.05, "ci_high": 0.15}, 0.95)
    assert "covers item sampling only" in s


def test_item_difficulty_cancels_but_run_noise_does_not():
    rng = np.random.default_rng(4)
    hard = rng.normal(0, 5.0, size=(200, 1))                          # huge spread between items, shared by arms
    runs_ref, runs_arm = rng.normal(0, 0.02, 3), rng.normal(0, 0.02, 3)
    ref = hard + runs_ref + rng.normal(0, 0.05, (200, 3))
    arm = hard - 0.1 + runs_arm + rng.normal(0, 0.05, (200, 3))
    r = ac.contrast(ref, arm)
    assert r["ci_high"] < 0 and r["run_share"] > 0.5                # 0.1 under 5.0 item spread: found; runs dominate
    assert len(r["per_seed"]) == 3


def test_mde_is_the_noncentral_t_for_one_part_and_2_80_se_for_many_df():
    from scipy import optimize, stats
    for df in (2, 4, 9):
        tc = stats.t.ppf(0.975, df)
        nct = optimize.brentq(lambda k: stats.nct.sf(tc, df, k) + stats.nct.cdf(-tc, df, k) - 0.8, 0, 6)
        assert ac.mde_from_parts([(0.01 ** 2, df)]) == pytest.approx(nct * 0.01, rel=1e-4)
    assert ac.mde_from_parts([(0.01 ** 2, 1e7)]) == pytest.approx(2.8016 * 0.01, rel=1e-3)
    assert ac.mde_from_parts([(0.01 ** 2, 1e7)], ci=0.9) == pytest.approx((1.6449 + 0.8416) * 0.01, rel=1e-3)
    assert ac.planned_mde(1e-5, 1e-4, 12, n_items=200) < ac.planned_mde(1e-5, 1e-4, 3, n_items=200) / 2


def test_contrast_refuses_unpaired_items_or_missing_values():
    with pytest.raises(ValueError, match="same items"):
        ac.contrast(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        ac.contrast(np.zeros(3), np.array([0, np.nan, 1]))


# --- proof by simulation: synthetic ablations with known effects and variance components ------------------
# Each regime draws per-run shifts (sd per arm), per-item-and-run noise and an item x arm interaction around a known
# effect, with a large item difficulty shared by the arms. The kit's earlier two-way percentile bootstrap (seeds and
# items resampled with replacement, seeds paired by index) covered 76% of these run-dominated ablations at 3 seeds and
# 86% at 5, and 99.5% of the item-dominated ones (bench/bench_ablation_intervals.py); it is kept only as this
# failing reference.
REGIMES = {"run-dominated": {"run": (0.0033, 0.0033), "eps": 0.008, "ia": 0.0},
           "item-dominated": {"run": (0.0002, 0.0002), "eps": 0.05, "ia": 0.0},
           "item-by-arm": {"run": (0.001, 0.002), "eps": 0.01, "ia": 0.01}}


def _synthetic(rng, reps, items, seeds, run, eps, ia, effect=0.0):
    hard = rng.normal(1.4, 0.3, (reps, items, 1))
    ref = hard + rng.normal(0, run[0], (reps, 1, seeds)) + rng.normal(0, eps, (reps, items, seeds))
    arm = (hard + effect + rng.normal(0, ia, (reps, items, 1)) + rng.normal(0, run[1], (reps, 1, seeds))
           + rng.normal(0, eps, (reps, items, seeds)))
    return ref, arm


@pytest.mark.parametrize("seeds", [3, 5, 10])
@pytest.mark.parametrize("regime", list(REGIMES))
def test_interval_covers_95_percent_and_the_mde_has_80_percent_power(regime, seeds):
    """The statistics ``compare`` uses, vectorized over 2,000 synthetic ablations per cell (200 items)."""
    rng = np.random.default_rng(100 * seeds + len(regime))
    ref, arm = _synthetic(rng, 2000, 200, seeds, **REGIMES[regime], effect=-0.005)
    c = ac.variance_components(ref, arm)
    lo, hi = ac.t_interval(c, 0.95)
    covered = np.mean((lo <= -0.005) & (-0.005 <= hi))
    assert 0.93 <= covered <= 0.97, covered
    # the MDE at the true variance components: ablations with that true effect exclude zero 80% of the time ...
    ra, rb = REGIMES[regime]["run"]
    eps, ia = REGIMES[regime]["eps"], REGIMES[regime]["ia"]
    truth = [((ra ** 2 + eps ** 2 / 200) / seeds, seeds - 1), ((rb ** 2 + eps ** 2 / 200) / seeds, seeds - 1),
             (ia ** 2 / 200, 199)]
    mde = ac.mde_from_parts(truth)
    ref, arm = _synthetic(rng, 2000, 200, seeds, **REGIMES[regime], effect=mde)
    lo, hi = ac.t_interval(ac.variance_components(ref, arm), 0.95)
    assert 0.75 <= np.mean((lo > 0) | (hi < 0)) <= 0.85
    # ... and the MDE each run reports (from its own estimates) is that number, give or take its sampling noise
    reported = np.median([ac.mde_from_parts(ac._parts(c, r)) for r in range(60)])
    assert 0.8 <= reported / mde <= 1.2


def _write_synthetic_ablation(root: Path, grids: dict, seeds: list[int]) -> None:
    """An ablation folder in the layout the kit writes: plan.json and, per arm and seed, a complete
    04_evaluation with nll.jsonl (one row per benchmark and item)."""
    arms = ["basic", "basic+translated"]
    runs = [{"arm": a, "seed": s, "dir": f"arms/{ablation.slug(a)}-seed{s}"} for s in seeds for a in arms]
    (root / "ablation").mkdir(parents=True)
    (root / "ablation/plan.json").write_text(json.dumps({"arms": arms, "seeds": seeds, "reference": "basic",
                                                         "ci": 0.95, "runs": runs}))
    for r in runs:
        d = root / r["dir"] / "04_evaluation"
        d.mkdir(parents=True)
        (d / "phase.json").write_text(json.dumps({"status": "complete"}))
        k = arms.index(r["arm"])
        j = seeds.index(r["seed"])
        with open(d / "nll.jsonl", "w") as fh:
            for bench, (ref, arm) in grids.items():
                col = (ref, arm)[k][:, j]
                fh.write("".join(json.dumps({"benchmark": bench, "item_id": str(i), "nll_mean": float(v)}) + "\n"
                                 for i, v in enumerate(col)))


@pytest.mark.parametrize("seeds", [3, 5])
def test_compare_on_synthetic_ablations_in_the_kits_layout(tmp_path, seeds):
    """Through ``compare``: files in the kit's layout, every regime as 60 benchmarks (each one synthetic ablation
    with a known effect of -0.005): each row equals the statistics above, and the intervals cover."""
    rng = np.random.default_rng(seeds)
    grids, truth = {}, {}
    for regime, p in REGIMES.items():
        ref, arm = _synthetic(rng, 60, 30, seeds, **p, effect=-0.005)
        for k in range(60):
            grids[f"{regime}-{k:02d}"] = (ref[k], arm[k])
    _write_synthetic_ablation(tmp_path, grids, list(range(seeds)))
    t = ac.compare(tmp_path)
    assert len(t) == len(grids) and (t.n_seeds == seeds).all() and (t.n_items == 30).all()
    for _, row in t.sample(12, random_state=0).iterrows():
        r = ac.contrast(*grids[row.benchmark])
        assert (row["diff"], row.ci_low, row.ci_high, row.df, row.mde) == pytest.approx(
            (r["diff"], r["ci_low"], r["ci_high"], r["df"], r["mde"]), rel=1e-9)
    covered = (t.ci_low <= -0.005) & (-0.005 <= t.ci_high)
    assert covered.mean() >= 0.92, covered.groupby(t.benchmark.str.rsplit("-", n=1).str[0]).mean()
    assert t.per_seed.str.count("seed ").eq(seeds).all()
    assert t.sentence.str.contains(f"{seeds} seeds, t with").all()


def test_conclusion_says_what_the_run_shows_in_either_direction():
    def row(bench, arm, ref, d, lo, hi, metric="nll"):
        return {"benchmark": bench, "metric": metric, "arm": arm, "reference": ref, "n_items": 200, "n_seeds": 3,
                "diff": d, "ci_low": lo, "ci_high": hi, "excludes_zero": lo > 0 or hi < 0, "mde": 0.02}
    t = pd.DataFrame([row("gsm8k", "basic+translated", "basic", -0.05, -0.07, -0.03),
                      row("math", "basic+translated", "basic", 0.001, -0.01, 0.012),
                      row("gsm8k", "basic+translated", "token-matched", 0.04, 0.02, 0.06),
                      row("gsm8k", "basic+translated", "basic", 0.0, -0.01, 0.01, metric="accuracy")])
    c = ac.conclusion(t)
    assert c.startswith("What this run shows:")
    assert "basic+translated predicts the reference solutions better than basic on gsm8k -0.0500" in c
    assert "no difference can be claimed on math +0.0010" in c and "could detect about ±0.0200" in c
    assert "predicts them worse than token-matched on gsm8k +0.0400" in c
    assert "200 items, 3 seeds per arm" in c and "Accuracy (reported, not relied on" in c
    # the paper's question is answered only as far as the basic+translated - token-matched interval allows
    assert "The paper's question" in c and "translated code did worse than the same number of basic tokens on gsm8k" in c
    t.loc[2, ["diff", "ci_low", "ci_high", "excludes_zero"]] = [-0.004, -0.011, 0.003, False]
    c = ac.conclusion(t)
    assert "cannot tell translated code from more basic tokens on gsm8k" in c and "helped" not in c
    assert ac.conclusion(pd.DataFrame()).startswith("No arm has finished")


def test_contrasts_add_translated_vs_token_matched():
    plan = {"arms": ["basic", "basic+translated", "token-matched"], "reference": "basic"}
    assert ac.contrasts(plan) == [("basic+translated", "basic"), ("token-matched", "basic"),
                                  ("basic+translated", "token-matched")]
    assert ac.contrasts({"arms": ["basic", "basic+translated"], "reference": "basic"}) == [("basic+translated", "basic")]


def test_sentence_says_whether_zero_is_excluded():
    base = {"n_items": 10, "n_seeds": 2, "df": 2.3, "runs_known": True, "mde": 0.04,
            "per_seed": [(0, -0.02), (1, 0.0)]}
    inc = ac.sentence("gsm8k", "nll", "basic+translated", "basic",
                      {**base, "diff": -0.01, "ci_low": -0.03, "ci_high": 0.01}, 0.95)
    assert "includes zero" in inc and "95% CI" in inc and "10 items x 2 seeds, t with 2.3 df" in inc
    assert "per seed -0.0200, +0.0000" in inc and "(MDE) is 0.0400" in inc
    exc = ac.sentence("math", "nll", "basic+translated", "basic",
                      {**base, "diff": -0.02, "ci_low": -0.03, "ci_high": -0.01}, 0.95)
    assert "excludes zero" in exc and "better" in exc                 # lower NLL is better
    assert "item sampling only" not in exc
    acc = ac.sentence("math", "accuracy", "a", "b",
                      {**base, "diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "per_seed": []}, 0.9)
    assert "worse" in acc and "-20.0 points" in acc and "90% CI" in acc
    same = ac.sentence("math", "accuracy", "a", "b", {**base, "diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}, 0.95)
    assert "identical on every item and seed" in same and "MDE" not in same and "excludes" not in same


# --- the recipe block -----------------------------------------------------------------------------------
def _recipe(tmp_path, text):
    f = tmp_path / "r.yaml"
    f.write_text("name: r\nmodel: embedded:smollm2-135m-instruct\n" + text)
    return f


@pytest.mark.parametrize("block, needle", [
    ("ablation: {arms: [basic, translated-only]}", "unknown arm 'translated-only'"),
    ("ablation: {arms: [basic]}", "at least two different arms"),
    ("ablation: {seeds: [0, 0]}", "ablation.seeds"),
    ("ablation: {seeds: []}", "ablation.seeds"),
    ("ablation: {reference: token-matched}", "not one of the arms"),
    ("ablation: {bootstrap: 2000}", "'ablation.bootstrap' is no longer used"),
    ("ablation: {arms: basic}", "'ablation.arms' must be list"),
    ("ablation: {seed: [1]}", "unknown key 'ablation.seed'"),
    ("ablation: {}\nphases:\n  pretraining: {mixture: basic}", "phases.pretraining.mixture"),
])
def test_bad_ablation_blocks_name_the_key(tmp_path, block, needle):
    with pytest.raises(config.ConfigError) as e:
        config.load(_recipe(tmp_path, block))
    assert needle in str(e.value) and "r.yaml" in str(e.value)


def test_block_defaults_and_overrides(tmp_path):
    r = config.load(_recipe(tmp_path, "ablation: {seeds: [3, 4]}\n"))
    assert r.ablation["arms"] == ["basic", "basic+translated"] and r.ablation["seeds"] == [3, 4]
    assert r.ablation["reference"] == "basic" and r.ablation["ci"] == 0.95
    r = config.load(_recipe(tmp_path, "ablation: {}\n"),
                    {"ablation.arms": ["basic", "basic+translated", "token-matched"]})
    assert r.ablation["arms"][-1] == "token-matched"
    assert config.load(_recipe(tmp_path, "")).ablation is None


def test_shipped_ablation_recipes_validate():
    for f in ("configs/ablation-demo.yaml", "configs/ablation-overnight.yaml", "configs/one-gpu-8b-ablation.yaml"):
        r = config.load(f)
        assert r.ablation and len(r.ablation["arms"]) >= 2 and len(r.ablation["seeds"]) >= 2, f


def test_upsampling_reaches_the_token_target_and_keeps_groups():
    rows = [{"id": f"d{i}", "text": "x" * i} for i in range(1, 6)]
    toks = [10, 20, 30, 40, 50]                                        # 150 tokens
    out, n = ablation.upsample_to_tokens(rows, toks, 190, seed=0)
    assert n >= 190 and n - 50 < 190                                   # stops at the first crossing
    assert [r["id"] for r in out[:5]] == [r["id"] for r in rows]      # every basic document once, first
    extra = out[5:]
    assert extra and all("#repeat" in r["id"] for r in extra)
    assert all(r["doc_id"] == r["id"].split("#")[0] for r in extra)  # copies stay with their original
    assert ablation.upsample_to_tokens(rows, toks, 190, seed=0) == (out, n)


# --- miniature phases through the real runner -------------------------------------------------------------
NAMES = {"data": "01_data_sampling", "translation": "02_translation", "pretraining": "03_qlora_pretraining",
         "evaluation": "04_evaluation"}
# phase: (its parameters, now defined in mini_settings.ABLATION; kept here to read beside the body), body
BODY = {
    "data": ("n_docs = 6  # documents",
             "from mathcode.util import write_jsonl\n"
             "write_jsonl(P.path('corpus.jsonl'), [{'id': f'd{i}', 'text': 'one two three four ' * (i + 1)} for i in range(n_docs)])\n"
             "P.finish(docs=n_docs)"),
    "translation": ("n_blocks = 2  # translated documents",
                    "src = P.require('data', 'corpus.jsonl')\nfrom mathcode.util import write_jsonl\n"
                    "write_jsonl(P.path('translated.jsonl'), [{'id': f't{i}', 'text': 'x = 1 + 1 print(x)'} for i in range(n_blocks)])\n"
                    "print('translated', n_blocks, 'blocks')\nP.finish(blocks=n_blocks)"),
    "pretraining": ('mixture = "basic+translated"  # mixture\ncorpus_files = []  # files',
                    "import json\nfrom mathcode.util import read_jsonl\n"
                    "files = list(corpus_files) or [P.require('data', 'corpus.jsonl')] + "
                    "([P.require('translation', 'translated.jsonl')] if 'translated' in mixture else [])\n"
                    "parts = {}\nfor f in files:\n    for r in read_jsonl(f):\n"
                    "        k = 'translated' if r['id'].startswith('t') else 'basic'\n"
                    "        parts[k] = parts.get(k, 0) + len(r['text'].split())\n"
                    "P.path('adapter').mkdir(exist_ok=True)\n"
                    "json.dump({'mixture': mixture, 'seed': seed, 'files': [str(f) for f in files]}, open(P.path('adapter/adapter_config.json'), 'w'))\n"
                    "P.finish(steps=3, train_tokens_by_part=parts)"),
    "evaluation": ('adapter = ""  # adapter\ninclude_base = True  # base too\nn_items = 8  # items',
                   "import json, os, random, time\nfrom mathcode.util import write_jsonl\n"
                   "if os.environ.get('MINI_HANG_IN') and os.environ['MINI_HANG_IN'] in str(P.run_dir):\n"
                   "    write_jsonl(P.path('items.jsonl'), [{'model': 'base+adapter', 'adapter': 'x', 'benchmark': 'gsm8k', "
                   "'item_id': '0', 'mode': 'cot', 'prompt_id': 'p0', 'correct': True}])   # a half-written evaluation\n"
                   "    time.sleep(600)\n"
                   "effect = 0.0\nad = None\n"
                   "if adapter != 'none':\n"
                   "    ad = str(P.require('pretraining', 'adapter/adapter_config.json'))\n"
                   "    cfg = json.load(open(ad))\n"
                   "    effect = -0.2 if 'translated' in cfg['mixture'] else 0.0\n"
                   "    effect += 0.01 * cfg['seed']\n"
                   "rows, nll = [], []\n"
                   "models = ([('base', None, 0.0)] if include_base else []) + ([('base+adapter', ad, effect)] if ad else [])\n"
                   "for label, a, e in models:\n"
                   "    for i in range(n_items):\n"
                   "        rows.append({'model': label, 'adapter': a, 'benchmark': 'gsm8k', 'item_id': str(i), 'mode': 'cot', "
                   "'prompt_id': f'p{i}', 'correct': (i + (e < 0)) % 3 == 0})\n"
                   "        nll.append({'model': label, 'benchmark': 'gsm8k', 'item_id': str(i), 'nll_mean': 2.0 + 0.1 * i + e})\n"
                   "write_jsonl(P.path('items.jsonl'), rows)\nwrite_jsonl(P.path('nll.jsonl'), nll)\n"
                   "P.finish(items=n_items)"),
}


def _mini_nb(phase):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    extra, body = BODY[phase]
    p = nbformat.v4.new_code_cell(mini_settings.ABLATION[phase].parameters_cell())
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
                    f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nimport mini_settings\n"
                    f"import mathcode.phase as phase\nP = phase.start(mini_settings.ABLATION[{phase!r}], globals())"),
                nbformat.v4.new_code_cell(body)]
    return nb


@pytest.fixture()
def mini(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    for phase, name in NAMES.items():
        nbformat.write(_mini_nb(phase), tmp_path / "notebooks" / f"{name}.ipynb")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "ab.yaml").write_text(
        "name: ab\nmodel: embedded:smollm2-135m-instruct\nrun_dir: outputs/ab\n"
        "ablation: {arms: [basic, basic+translated, token-matched], seeds: [0, 1]}\n")
    monkeypatch.setenv("MATHCODE_ROOT", str(tmp_path))
    monkeypatch.setattr(params, "SETTINGS", mini_settings.ABLATION)
    return tmp_path


@pytest.mark.slow
def test_mini_ablation_runs_every_arm_in_its_own_folder_and_compares(mini, capsys):
    runner.run("configs/ab.yaml", overrides={"ablation.seeds": [0]})
    root = mini / "outputs/ab"
    plan = json.loads((root / "ablation/plan.json").read_text())
    assert [(r["arm"], r["seed"]) for r in plan["runs"]] == [("basic", 0), ("basic+translated", 0), ("token-matched", 0)]
    for r in plan["runs"]:
        d = root / r["dir"]
        assert (d / "01_data").is_symlink() and (d / "01_data").resolve() == (root / "01_data").resolve()
        for key in ("03_pretraining", "04_evaluation"):
            assert json.loads((d / key / "manifest.json").read_text())["status"] == "complete"
        m4 = json.loads((d / "04_evaluation/manifest.json").read_text())
        assert m4["parameters"]["seed"] == 0 and m4["parameters"]["include_base"] is False
        assert (d / "report.html").exists()
    assert not (root / "03_pretraining").exists()                          # phases 3-4 only in the arms ...
    base = read_jsonl(root / "04_evaluation/items.jsonl")                  # ... and the base model once, at the top
    assert {r["model"] for r in base} == {"base"}
    # the token-matched arm trained on basic only, upsampled to the token count of basic+translated
    tok = json.loads((root / "ablation/corpus_tokens.json").read_text())
    assert tok["translated_documents"] == 2 and 0 < tok["translated_share"] < 1
    assert tok["token_matched_tokens"] >= tok["basic_tokens"] + tok["translated_tokens"]
    tm = json.loads((root / "arms/token-matched-seed0/03_pretraining/manifest.json").read_text())
    assert tm["parameters"]["corpus_files"] == [str(root / ablation.TOKEN_MATCHED_FILE)]
    out = capsys.readouterr().out
    assert "02_translation | translated 2 blocks" in out                    # notebook output streamed live

    # more seeds: finished runs are skipped, the new ones run with their own training seed
    started = json.loads((root / "arms/basic-seed0/03_pretraining/manifest.json").read_text())["started"]
    runner.run("configs/ab.yaml")                                            # the recipe's seeds: [0, 1]
    assert json.loads((root / "arms/basic-seed0/03_pretraining/manifest.json").read_text())["started"] == started
    assert json.loads((root / "arms/basic-seed1/03_pretraining/manifest.json").read_text())["parameters"]["seed"] == 1
    ident = json.loads((root / "ablation/evaluation_identity.json").read_text())
    assert len(ident) == 7 and len({v["items_sha"] for v in ident.values()}) == 1   # 6 arm runs + base, same items
    # the comparison: planted effect -0.2 nats on every item for basic+translated, none for token-matched
    t = ac.compare(root)
    assert list(t.columns) == ac.COLUMNS
    nll = t[(t.metric == "nll") & (t.reference == "basic")].set_index("arm")
    assert nll.loc["basic+translated", "diff"] == pytest.approx(-0.2)
    assert nll.loc["basic+translated", "excludes_zero"] and nll.loc["basic+translated", "n_seeds"] == 2
    assert nll.loc["token-matched", "diff"] == pytest.approx(0.0) and not nll.loc["token-matched", "excludes_zero"]
    vs_tm = t[(t.metric == "nll") & (t.reference == "token-matched")].iloc[0]   # translated code vs more tokens
    assert vs_tm.arm == "basic+translated" and vs_tm["diff"] == pytest.approx(-0.2) and vs_tm.excludes_zero
    moved = t[~((t.ci_low == 0) & (t.ci_high == 0))]            # rows whose arms differ somewhere
    assert (t.mde >= 0).all() and (moved[moved.metric == "accuracy"].mde > 0).all()   # NLL: planted exact shifts
    assert moved.sentence.str.contains("MDE").all()
    assert (t.ci_low <= t["diff"]).all() and (t["diff"] <= t.ci_high).all()
    summary = json.loads((root / "ablation/summary.json").read_text())
    assert "basic+translated predicts the reference solutions better than basic on gsm8k" in summary["conclusion"]
    html = (root / "report.html").read_text()
    assert "id='ablation'" in html and "excludes zero" in html and "differences" in html
    assert (root / "ablation/figures/differences.png").stat().st_size > 1000
    # notebook 04's view of the arms, from inside an arm folder
    arms = ac.arms_table(root / "arms/basic-seed1")
    assert set(arms.arm) == {"basic", "basic+translated", "token-matched"} and set(arms.seed) == {0, 1}

    # an arm scored on other prompts is refused, naming the arms
    f = root / f"arms/{ablation.slug('basic+translated')}-seed0/04_evaluation/items.jsonl"
    rows = read_jsonl(f)
    rows[-1]["prompt_id"] = "another-prompt"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ablation.AblationError, match="different items/prompts"):
        ablation.check_identical_evaluation(root)


@pytest.mark.slow
def test_a_killed_ablation_resumes_without_rerunning_or_half_counting(mini):
    """SIGKILL the whole ``mathcode run`` process group while an arm's evaluation is half written; the comparison
    of what is on disk counts only finished arm runs; a second run finishes the rest and re-runs nothing."""
    import os
    import signal
    import subprocess
    import sys
    import time
    root = mini / "outputs/ab"
    env = {**os.environ, "MINI_HANG_IN": "basic-translated-seed1",
           "PYTHONPATH": os.pathsep.join([str(Path(ablation.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "mathcode", "run", "--config", "configs/ab.yaml", "--quiet"],
                            cwd=mini, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    hang = root / "arms/basic-translated-seed1/04_evaluation/items.jsonl"
    t0 = time.time()
    while not hang.exists():
        assert proc.poll() is None, "the run ended before reaching the arm it should be killed in"
        assert time.time() - t0 < 300
        time.sleep(0.5)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamps = {}
    for r in ("basic-seed0", "basic-translated-seed0", "token-matched-seed0", "basic-seed1", "basic-translated-seed1"):
        for k in ("03_pretraining", "04_evaluation"):
            f = root / f"arms/{r}/{k}/manifest.json"
            if f.exists() and json.loads(f.read_text())["status"] == "complete":
                stamps[(r, k)] = json.loads(f.read_text())["started"]
    assert ("basic-translated-seed1", "03_pretraining") in stamps        # its training finished ...
    assert ("basic-translated-seed1", "04_evaluation") not in stamps     # ... its evaluation did not
    assert len(stamps) == 9
    t = ac.compare(root)                                     # only complete evaluations count: seed 1 not yet
    bt = t[(t.arm == "basic+translated") & (t.reference == "basic")]
    assert len(bt) and (bt.n_seeds == 1).all()
    runner.run("configs/ab.yaml", progress=False)
    for (r, k), started in stamps.items():                   # nothing finished was run again
        assert json.loads((root / f"arms/{r}/{k}/manifest.json").read_text())["started"] == started, (r, k)
    done = {r["dir"]: json.loads((root / r["dir"] / "04_evaluation/manifest.json").read_text())["status"]
            for r in json.loads((root / "ablation/plan.json").read_text())["runs"]}
    assert set(done.values()) == {"complete"} and len(done) == 6
    assert len(read_jsonl(hang)) == 8                        # the half-written evaluation was completed once
    t = ac.compare(root)
    assert (t[t.reference == "basic"].n_seeds == 2).all()


def test_arms_table_outside_an_ablation_is_empty_with_a_note(tmp_path):
    t = ac.arms_table(tmp_path)
    assert t.empty and "not part of an ablation" in t.attrs["note"]


def test_notebook_view_of_the_comparison_inside_and_outside_an_ablation(tmp_path):
    assert "not part of an ablation" in ac.comparison_of(tmp_path).attrs["note"]
    rng = np.random.default_rng(9)
    ref, arm = _synthetic(rng, 1, 20, 3, **REGIMES["run-dominated"], effect=-0.05)
    _write_synthetic_ablation(tmp_path / "ab", {"gsm8k": (ref[0], arm[0])}, [0, 1, 2])
    t = ac.comparison_of(tmp_path / "ab/arms/basic-seed1")            # from inside an arm, as notebook 04 runs
    assert len(t) == 1 and set(ac.SHOWN) <= set(t.columns)
    assert t.attrs["conclusion"].startswith("What this run shows:") and "3 seeds per arm" in t.attrs["conclusion"]
