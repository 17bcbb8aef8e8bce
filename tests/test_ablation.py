"""The ablation: paired bootstrap with known answers, the recipe block, the arm plumbing and the comparison.

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


# --- paired bootstrap: answers known in advance ---------------------------------------------------------
def test_constant_shift_gives_a_point_interval():
    rng = np.random.default_rng(1)
    ref = rng.normal(2.0, 1.0, size=(50, 3))
    r = ac.paired_bootstrap(ref, ref - 0.25, n_boot=500)
    assert r["diff"] == pytest.approx(-0.25)
    assert r["ci_low"] == pytest.approx(-0.25) and r["ci_high"] == pytest.approx(-0.25)
    assert (r["n_items"], r["n_seeds"]) == (50, 3)


def test_interval_width_matches_the_normal_theory_for_iid_items():
    rng = np.random.default_rng(2)
    d = rng.normal(0.5, 1.0, size=400)
    r = ac.paired_bootstrap(np.zeros(400), d, n_boot=4000, seed=3)
    half = 1.96 * d.std(ddof=1) / np.sqrt(400)                     # ~0.098
    assert r["diff"] == pytest.approx(d.mean())
    assert (r["ci_high"] - r["ci_low"]) / 2 == pytest.approx(half, rel=0.12)
    assert r["ci_low"] < d.mean() < r["ci_high"]


def test_pairing_removes_item_difficulty():
    rng = np.random.default_rng(4)
    difficulty = rng.normal(0, 5.0, size=200)                        # huge spread between items
    ref, arm = difficulty, difficulty - 0.1 + rng.normal(0, 0.05, size=200)
    r = ac.paired_bootstrap(ref, arm, n_boot=2000)
    assert r["ci_high"] < 0                                           # a 0.1 effect under 5.0 spread is detected


def test_seed_spread_enters_the_interval():
    # every item moves the same way within a seed, opposite ways across the two seeds: the items agree
    # perfectly, yet the effect is pure seed noise. Resampling seeds gives the mean of 2 draws from {-1, +1}:
    # -1, 0, +1 with probabilities 1/4, 1/2, 1/4, so the 95% interval is [-1, 1].
    d = np.tile([-1.0, 1.0], (100, 1))
    r = ac.paired_bootstrap(np.zeros_like(d), d, n_boot=4000)
    assert r["diff"] == 0 and r["ci_low"] == -1 and r["ci_high"] == 1


def test_balanced_accuracy_flips_include_zero():
    ref = np.array([1, 0] * 30, dtype=float)
    arm = 1 - ref                                                     # 30 wrong->right, 30 right->wrong
    r = ac.paired_bootstrap(ref, arm, n_boot=2000)
    assert r["diff"] == 0 and r["ci_low"] < 0 < r["ci_high"]


def test_minimum_detectable_effect_follows_the_standard_error():
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 1.0, size=400)
    r = ac.paired_bootstrap(np.zeros(400), d, n_boot=4000, seed=1)
    se = d.std(ddof=1) / np.sqrt(400)                                 # 0.05
    assert r["se"] == pytest.approx(se, rel=0.1)
    assert r["mde"] == pytest.approx(2.8016 * r["se"], rel=1e-3)      # z_0.975 + z_0.8 at 95% / 80% power
    assert ac.mde(0.01, ci=0.9) == pytest.approx((1.6449 + 0.8416) * 0.01, rel=1e-3)
    four = ac.paired_bootstrap(np.zeros(1600), rng.normal(0.0, 1.0, size=1600), n_boot=4000, seed=1)
    assert four["mde"] == pytest.approx(r["mde"] / 2, rel=0.15)       # 4x the items: half the MDE


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
    assert "200 items, 3 seeds" in c and "Accuracy (reported, not relied on" in c
    assert ac.conclusion(pd.DataFrame()).startswith("No arm has finished")


def test_contrasts_add_translated_vs_token_matched():
    plan = {"arms": ["basic", "basic+translated", "token-matched"], "reference": "basic"}
    assert ac.contrasts(plan) == [("basic+translated", "basic"), ("token-matched", "basic"),
                                  ("basic+translated", "token-matched")]
    assert ac.contrasts({"arms": ["basic", "basic+translated"], "reference": "basic"}) == [("basic+translated", "basic")]


def test_bootstrap_refuses_unpaired_or_missing_values():
    with pytest.raises(ValueError, match="same items"):
        ac.paired_bootstrap(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        ac.paired_bootstrap(np.zeros(3), np.array([0, np.nan, 1]))


def test_sentence_says_whether_zero_is_excluded():
    inc = ac.sentence("gsm8k", "nll", "basic+translated", "basic",
                      {"diff": -0.01, "ci_low": -0.03, "ci_high": 0.01, "n_items": 10, "n_seeds": 2}, 0.95)
    assert "includes zero" in inc and "95% CI" in inc and "10 items x 2 seeds" in inc
    exc = ac.sentence("math", "nll", "basic+translated", "basic",
                      {"diff": -0.02, "ci_low": -0.03, "ci_high": -0.01, "n_items": 10, "n_seeds": 2}, 0.95)
    assert "excludes zero" in exc and "better" in exc                 # lower NLL is better
    assert "training noise" not in exc
    one = ac.sentence("math", "nll", "a", "b",
                      {"diff": -0.02, "ci_low": -0.03, "ci_high": -0.01, "n_items": 10, "n_seeds": 1}, 0.95)
    assert "one training seed" in one and "not training noise" in one
    acc = ac.sentence("math", "accuracy", "a", "b",
                      {"diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "n_items": 10, "n_seeds": 1}, 0.9)
    assert "worse" in acc and "-20.0 points" in acc and "90% CI" in acc


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
    ("ablation: {bootstrap: 10}", "at least 100"),
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
    for f in ("configs/ablation-demo.yaml", "configs/one-gpu-8b-ablation.yaml"):
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
        "ablation: {arms: [basic, basic+translated, token-matched], seeds: [0, 1], bootstrap: 500}\n")
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


@pytest.mark.slow
def test_smoke_ablation_with_the_real_notebooks(tmp_path):
    """Both arms through the real phase notebooks (embedded model, smoke sizes): identical items, a complete
    comparison table with ordered intervals, the translated share recorded."""
    run = tmp_path / "ablation"
    runner.run("configs/smoke.yaml", run_dir=str(run), progress=False,
               overrides={"ablation": {"arms": ["basic", "basic+translated"], "seeds": [0], "bootstrap": 200,
                                       "evaluate_base": False}})
    for arm in ("basic", "basic+translated"):
        d = run / f"arms/{ablation.slug(arm)}-seed0"
        m3 = json.loads((d / "03_pretraining/manifest.json").read_text())
        assert m3["status"] == "complete" and m3["parameters"]["mixture"] == arm
        assert json.loads((d / "04_evaluation/manifest.json").read_text())["status"] == "complete"
    ident = json.loads((run / "ablation/evaluation_identity.json").read_text())
    assert len(ident) == 2 and len({(v["items_sha"], v["nll_sha"]) for v in ident.values()}) == 1
    assert all(v["items"] > 0 for v in ident.values())
    t = ac.compare(run)
    assert list(t.columns) == ac.COLUMNS and set(t.metric) == {"nll", "accuracy"}
    assert (t.arm == "basic+translated").all() and (t.reference == "basic").all()
    assert (t.ci_low <= t["diff"] + 1e-12).all() and (t["diff"] <= t.ci_high + 1e-12).all()
    assert t.sentence.str.contains("interval (?:ex|in)cludes zero|the interval is the point zero").all()
    tok = json.loads((run / "ablation/corpus_tokens.json").read_text())
    assert tok["basic_tokens"] > 0 and 0 <= tok["translated_share"] < 1
    assert "id='ablation'" in (run / "report.html").read_text()
