"""The paper's central experiment as one command: the same basic data with and without model-translated code.

A recipe with an ``ablation:`` block runs phases 1–2 once into its run folder, then phases 3–4 for every
arm x seed in a folder of its own (``arms/<arm>-seed<N>/``, with its own manifests; phases 1–2 are linked in, not
copied), then compares the arms (``mathcode.run.ablation_compare``) into ``ablation/`` and the HTML report::

    ablation:
      arms: [basic, basic+translated, token-matched]   # token-matched: basic upsampled to basic+translated's tokens
      seeds: [0, 1]                                     # training seeds (phase 3); evaluation is identical for all
      reference: basic                                  # differences are arm minus this arm
      ci: 0.95                                          # t intervals over training runs and items
      evaluate_base: true                               # evaluate the untrained base once, as a reference row

Every arm is evaluated on identical items and prompts: the evaluation parameters are the same for all (its seed is
the recipe's, never the training seed) and the runner checks the item ids and prompt hashes after each arm and
refuses to compare arms that differ.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import time
from pathlib import Path

from mathcode.run import config as _config, notebook_run
from mathcode.run.ablation_settings import (ARMS, DEFAULTS, KEYS, SET_BY_ARMS, TOKEN_MATCHED_FILE,  # noqa: F401
                                           check_block)

from mathcode import paths

from mathcode.run import params
from mathcode.util import read_jsonl, write_json, write_jsonl

class AblationError(RuntimeError):
    """The arms were not evaluated on identical items and prompts, or an arm's inputs are unusable."""


def _say(msg: str):
    print(f"[mathcode] {msg}", flush=True)


# --- the plan -----------------------------------------------------------------------------------------
def slug(arm: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", arm).strip("-")


def plan(recipe, run_dir) -> dict:
    """Which runs exist and where: {arms, seeds, reference, runs: [{arm, seed, dir}], ...} (written to plan.json)."""
    ab = recipe.ablation
    runs = [{"arm": a, "seed": s, "dir": f"arms/{slug(a)}-seed{s}"} for s in ab["seeds"] for a in ab["arms"]]
    return {"recipe": str(recipe.path), "name": recipe.name, "model": recipe.model, "arms": ab["arms"],
            "seeds": ab["seeds"], "reference": ab["reference"], "ci": ab["ci"],
            "evaluate_base": ab["evaluate_base"], "epochs": ab.get("epochs", 0.0), "seed": recipe.seed, "runs": runs}


def arm_parameters(recipe, run_dir: Path, arm: str, seed: int, steps: dict | None = None) -> dict:
    """Per-phase parameter overrides of one arm run (validated against the notebooks before anything starts).

    ``steps``: {(arm, seed): max_steps} from ``plan_steps`` when the recipe asks for ``ablation.epochs``."""
    pre = {"seed": seed}
    if ARMS[arm]["mixture"]:
        pre["mixture"] = ARMS[arm]["mixture"]
    else:
        pre.update(mixture="basic", corpus_files=[str(run_dir / TOKEN_MATCHED_FILE)])
    if (recipe.ablation or {}).get("epochs"):
        pre["max_steps"] = int((steps or {}).get((arm, seed), 1))
    ev = {"seed": recipe.seed}
    if "include_base" in params.defaults("evaluation"):
        ev["include_base"] = False               # the base model is evaluated once for the whole ablation
    return {"pretraining": pre, "evaluation": ev}


def _pre_value(recipe, key: str):
    v = ((recipe.phases or {}).get("pretraining") or {}).get(key)
    return params.defaults("pretraining")[key] if v is None else v


def plan_steps(recipe, run_dir: Path) -> dict:
    """{(arm, seed): max_steps} so that every arm run makes ``ablation.epochs`` passes over its own training
    blocks: its mixture packed exactly as phase 3 packs it (same files, tokenizer, block size, held-out split of
    that seed), steps = ceil(epochs x blocks / (batch x grad_accum)). Written to ``ablation/steps.json``."""
    import math
    from mathcode.models import load_tokenizer
    from mathcode.train import token_store
    ab = recipe.ablation
    block, batch = int(_pre_value(recipe, "block_size")), int(_pre_value(recipe, "per_device_batch_size"))
    accum, held = int(_pre_value(recipe, "grad_accum")), float(_pre_value(recipe, "heldout_fraction"))
    tok = load_tokenizer(recipe.model, padding_side="right")
    files = {"basic": [(run_dir / paths.PHASE_NAMES["data"] / "corpus.jsonl", "basic")],
             "basic+translated": [(run_dir / paths.PHASE_NAMES["data"] / "corpus.jsonl", "basic"),
                                  (run_dir / paths.PHASE_NAMES["translation"] / "translated.jsonl", "translated")],
             "token-matched": [(run_dir / TOKEN_MATCHED_FILE, Path(TOKEN_MATCHED_FILE).stem)]}
    out, record = {}, []
    for arm in ab["arms"]:
        # the arms' own token stores: tokenized here once, then reused by every arm run and seed
        stores = [token_store.build_part(f, lab, tok, _pre_value(recipe, "token_store") or None)
                  for f, lab in files[arm] if f.is_file()]
        for seed in ab["seeds"]:
            blocks = token_store.splits(stores, block, heldout_fraction=held, seed=seed,
                                        max_documents=int(_pre_value(recipe, "max_documents")),
                                        repeats=_pre_value(recipe, "part_repeats")).train.n_blocks
            steps = max(1, math.ceil(ab["epochs"] * blocks / (batch * accum)))
            out[(arm, seed)] = steps
            record.append({"arm": arm, "seed": seed, "train_blocks": blocks, "max_steps": steps,
                           "passes": round(steps * batch * accum / blocks, 3), "tokens_per_step": batch * accum * block})
    write_json(run_dir / "ablation" / "steps.json", {"epochs": ab["epochs"], "runs": record})
    for r in record:
        _say(f"ablation: {r['arm']} seed {r['seed']}: {r['train_blocks']} training blocks -> max_steps {r['max_steps']} "
             f"({r['passes']} passes)")
    return out


def _can_evaluate_base() -> bool:
    """Notebook 04 can evaluate the base model alone (parameters ``adapter='none'`` and ``include_base``)."""
    d = params.defaults("evaluation")
    return "include_base" in d and "adapter" in d


def _check_parameters(recipe, run_dir: Path):
    for a in recipe.ablation["arms"]:
        for phase, over in arm_parameters(recipe, run_dir, a, recipe.ablation["seeds"][0]).items():
            try:
                params.check(phase, {k: v for k, v in over.items() if k not in params.COMMON})
            except params.ParameterError as e:
                raise _config.ConfigError(f"{recipe.path}: ablation arm {a!r}: {e}") from None


# --- running ------------------------------------------------------------------------------------------
def run(recipe, run_dir, *, phases=None, force: bool = False, report: bool = True) -> dict:
    """Phases 1–2 once, phases 3–4 per arm x seed, then the comparison (resumable: finished runs are skipped)."""
    run_dir = Path(run_dir)
    _check_parameters(recipe, run_dir)
    selected = notebook_run._select(phases)
    p = plan(recipe, run_dir)
    write_json(run_dir / "ablation" / "plan.json", p)
    t0 = time.time()
    arms_txt = ", ".join(p["arms"])
    _say(f"ablation: arms {arms_txt} x seeds {p['seeds']} -> {len(p['runs'])} runs of phases 3-4 under {run_dir / 'arms'}")
    results = {}
    for phase in ("data", "translation"):
        if phase in selected:
            results[phase] = notebook_run.run_phase(recipe, phase, run_dir, force=force)
    steps = {}
    if "pretraining" in selected:
        corpus_tokens(recipe, run_dir, write_matched="token-matched" in p["arms"])
        if p.get("epochs"):
            steps = plan_steps(recipe, run_dir)
    if "evaluation" in selected and p["evaluate_base"] and _can_evaluate_base():
        _say("ablation: evaluating the untrained base model once (reference row for every arm)")
        results["base"] = notebook_run.run_phase(recipe, "evaluation", run_dir, force=force,
                                           extra={"adapter": "none", "include_base": True})
    for i, r in enumerate(p["runs"], 1):
        d = run_dir / r["dir"]
        link_shared_phases(run_dir, d)
        write_json(d / "recipe.json", {"config": str(recipe.path), "name": f"{recipe.name} · {r['arm']} · seed {r['seed']}",
                                       "model": recipe.model, "device": recipe.device, "seed": r["seed"],
                                       "ablation_arm": r["arm"], "ablation_root": "../..",
                                       "description": recipe.description})
        over = arm_parameters(recipe, run_dir, r["arm"], r["seed"], steps)
        _say(f"ablation run {i}/{len(p['runs'])}: arm {r['arm']}, seed {r['seed']} -> {d}")
        for phase in ("pretraining", "evaluation"):
            if phase in selected:
                results[(r["arm"], r["seed"], phase)] = notebook_run.run_phase(recipe, phase, d, force=force,
                                                                         extra=over[phase])
        if "evaluation" in selected:
            check_identical_evaluation(run_dir)
        if report:
            from mathcode.run.report import write_report
            write_report(d)
    table = write_comparison(run_dir)
    elapsed = round(time.time() - t0, 1)
    summary = json.loads((run_dir / "ablation" / "summary.json").read_text()) \
        if (run_dir / "ablation" / "summary.json").exists() else {}
    summary["wall_seconds_this_invocation"] = elapsed
    write_json(run_dir / "ablation" / "summary.json", summary)
    for s in table.sentence if len(table) else []:
        _say(s)
    if summary.get("conclusion"):
        _say(summary["conclusion"])
    _say(f"ablation: done in {elapsed} s; comparison in {run_dir / 'ablation' / 'comparison.csv'}")
    return results


def link_shared_phases(root: Path, arm_dir: Path) -> None:
    """``arm_dir/01_data`` and ``02_translation`` point at the shared ones (relative links: the tree can move)."""
    arm_dir.mkdir(parents=True, exist_ok=True)
    for phase in ("data", "translation"):
        name = paths.PHASE_NAMES[phase]
        target, link = root / name, arm_dir / name
        if not target.exists():
            continue
        rel = Path(*([".."] * len(arm_dir.relative_to(root).parts))) / name
        if link.is_symlink() and link.readlink() == rel:
            continue
        if link.is_symlink() or link.exists():
            raise AblationError(f"{link} exists and is not the link to the shared {name}; remove it and re-run")
        link.symlink_to(rel, target_is_directory=True)


# --- the corpus side ------------------------------------------------------------------------------------
def corpus_tokens(recipe, run_dir: Path, write_matched: bool = False) -> dict:
    """Tokens (the run model's tokenizer) of the basic corpus and the translated code; the translated share
    (the paper: 14.1% of MathCode-Pile). With ``write_matched``, also writes the token-matched basic corpus."""
    from mathcode.models import load_tokenizer
    basic_f = run_dir / paths.PHASE_NAMES["data"] / "corpus.jsonl"
    trans_f = run_dir / paths.PHASE_NAMES["translation"] / "translated.jsonl"
    if not basic_f.is_file():
        raise AblationError(f"{basic_f} is missing: run phase 'data' of this ablation first "
                            f"(python -m mathcode run --config {recipe.path} --phases data)")
    tok = load_tokenizer(recipe.model)
    basic = read_jsonl(basic_f)
    trans = read_jsonl(trans_f, missing_ok=True)
    nb = _count(tok, [r.get("text", "") for r in basic])
    nt = _count(tok, [r.get("text", "") for r in trans])
    out = {"basic_documents": len(basic), "basic_tokens": int(sum(nb)), "translated_documents": len(trans),
           "translated_tokens": int(sum(nt)),
           "translated_share": (sum(nt) / (sum(nb) + sum(nt))) if (sum(nb) + sum(nt)) else 0.0,
           "paper_translated_share": 0.141, "tokenizer": recipe.model}
    if write_matched:
        rows, n = upsample_to_tokens(basic, nb, out["basic_tokens"] + out["translated_tokens"], seed=recipe.seed)
        write_jsonl(run_dir / TOKEN_MATCHED_FILE, rows)
        out.update(token_matched_documents=len(rows), token_matched_tokens=n)
    write_json(run_dir / "ablation" / "corpus_tokens.json", out)
    _say(f"ablation: basic {out['basic_tokens']} tokens, translated {out['translated_tokens']} tokens "
         f"({100 * out['translated_share']:.1f}% of basic+translated; the paper: 14.1% of MathCode-Pile)")
    if not trans:
        _say("ablation: WARNING phase 2 verified no translated code: basic+translated equals basic in this run")
    return out


def _count(tok, texts: list[str]) -> list[int]:
    out = []
    for i in range(0, len(texts), 256):
        enc = tok(texts[i:i + 256], add_special_tokens=False)["input_ids"]
        out += [len(e) for e in enc]
    return out


def upsample_to_tokens(rows: list[dict], tokens: list[int], target: int, seed: int = 0) -> tuple[list[dict], int]:
    """All basic rows once, then seeded random repeats until the token count reaches ``target``.

    A repeat keeps its original's ``doc_id`` so phase 3's held-out split keeps every copy on the same side."""
    out = [dict(r, doc_id=r.get("doc_id") or r.get("id")) for r in rows]
    n = sum(tokens)
    rng = random.Random(seed)
    k = 0
    while n < target and rows:
        i = rng.randrange(len(rows))
        k += 1
        out.append(dict(rows[i], id=f"{rows[i].get('id', i)}#repeat{k}", doc_id=rows[i].get("doc_id") or rows[i].get("id")))
        n += tokens[i]
    return out, n


# --- identical evaluation --------------------------------------------------------------------------------
def evaluation_identity(eval_dir: Path) -> dict:
    """What an arm was scored on: the (benchmark, item id, prompt hash) triples of its trained model's rows and
    the NLL probe's items, with a hash of each list."""
    rows = read_jsonl(eval_dir / "items.jsonl", missing_ok=True)
    trained = {r["model"] for r in rows if r.get("adapter")}
    label = sorted(trained)[0] if trained else None
    from mathcode.evaluate.benchmarks import require_unique_ids
    mine = [(r["benchmark"], str(r["item_id"]), str(r.get("prompt_id"))) for r in rows
            if r.get("model") == label and r.get("mode", "cot") == "cot"]
    nll_rows = [(r["benchmark"], str(r["item_id"])) for r in read_jsonl(eval_dir / "nll.jsonl", missing_ok=True)
                if label is None or r.get("model") == label]
    require_unique_ids([k[:2] for k in mine], f"{eval_dir}/items.jsonl")
    require_unique_ids(nll_rows, f"{eval_dir}/nll.jsonl")
    items, nll = sorted(set(mine)), sorted(set(nll_rows))
    h = lambda xs: hashlib.sha256(json.dumps(xs).encode()).hexdigest()[:16]
    return {"items": len(items), "items_sha": h(items), "nll_items": len(nll), "nll_sha": h(nll),
            "_items": items, "_nll": nll}


def check_identical_evaluation(root: Path) -> dict:
    """Compare the evaluated arms' item/prompt lists; write ``ablation/evaluation_identity.json``; raise
    AblationError naming the arms and the first differing items when they differ."""
    from mathcode.run.ablation_compare import _complete
    p = json.loads((root / "ablation" / "plan.json").read_text())
    ids = {}
    for r in p["runs"]:
        d = root / r["dir"] / paths.PHASE_NAMES["evaluation"]
        if (d / "items.jsonl").exists() and _complete(d):      # a half-written evaluation (killed) is not compared
            ids[r["dir"]] = evaluation_identity(d)
    base_dir = root / paths.PHASE_NAMES["evaluation"]
    record = {k: {x: v[x] for x in ("items", "items_sha", "nll_items", "nll_sha")} for k, v in ids.items()}
    if (base_dir / "items.jsonl").exists() and _complete(base_dir):
        rows = read_jsonl(base_dir / "items.jsonl")
        base_items = sorted({(r["benchmark"], str(r["item_id"]), str(r.get("prompt_id"))) for r in rows})
        record["base"] = {"items": len(base_items),
                          "items_sha": hashlib.sha256(json.dumps(base_items).encode()).hexdigest()[:16]}
    write_json(root / "ablation" / "evaluation_identity.json", record)
    if ids:
        first, ref = next(iter(ids.items()))
        for k, v in ids.items():
            for key in ("_items", "_nll"):
                if v[key] != ref[key]:
                    diff = sorted(set(map(tuple, v[key])) ^ set(map(tuple, ref[key])))[:5]
                    what = "items/prompts" if key == "_items" else "NLL-probe items"
                    raise AblationError(f"ablation: {k} and {first} were evaluated on different {what} "
                                        f"(e.g. {diff}); every arm must see identical items and prompts — "
                                        f"re-run with --force after checking the evaluation settings")
        if "base" in record and record["base"]["items_sha"] != record[first]["items_sha"]:
            raise AblationError(f"ablation: the base evaluation in {base_dir} used other items/prompts than the arms")
    return record


# --- comparison outputs ---------------------------------------------------------------------------------
def write_comparison(root: Path):
    """``ablation/comparison.csv`` + ``summary.json`` + figures from whatever arms are evaluated so far."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mathcode.run import ablation_compare as ac
    table = ac.compare(root)
    out = root / "ablation"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    ac.arms_table(root).to_csv(out / "arms.csv", index=False)
    tokens = json.loads((out / "corpus_tokens.json").read_text()) if (out / "corpus_tokens.json").exists() else {}
    shares = training_shares(root)
    sd = ac.run_sd(root)
    sd.to_csv(out / "run_sd.csv", index=False)
    summary = {"arms": load_plan_arms(root), "corpus_tokens": tokens, "training_token_shares": shares,
               "comparisons": _finite(table.drop(columns=["sentence"])).to_dict("records"),
               "run_sd": sd.to_dict("records"),
               "seeds_plan": ac.seeds_plan(table, sd).to_dict("records"),
               "sentences": list(table.sentence), "conclusion": ac.conclusion(table)}
    identity = out / "evaluation_identity.json"
    if identity.exists():
        summary["evaluation_identity"] = json.loads(identity.read_text())
    write_json(out / "summary.json", summary)
    figs = []
    if len(table):
        fig = ac.figure(table, title=f"Ablation: arm − reference ({int(round(100 * float(table.ci.iloc[0])))}% t "
                                     f"intervals over training runs and items)")
        fig.savefig(out / "figures" / "differences.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs.append({"file": "differences.png", "caption": "Per benchmark: arm minus reference, gold-solution NLL "
                     "(left, lower is better) and accuracy (right); bars are t intervals whose variance has a "
                     "run-to-run part (each arm's per-run means) and an item part; filled markers exclude zero."})
        fig = ac.seeds_figure(root)
        fig.savefig(out / "figures" / "seeds.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs.append({"file": "seeds.png", "caption": "Each arm's mean per benchmark, one dot per training seed: "
                     "the seed-to-seed spread is the noise the intervals include."})
    write_json(out / "figures" / "index.json", figs)
    return table


def _finite(t):
    """The table with NaN / infinite values (no run variance with one seed, df of an exact difference) as None, so
    summary.json stays strict JSON."""
    import numpy as np
    t = t.replace([np.inf, -np.inf], np.nan).astype(object)
    return t.where(t.notna(), None)


def load_plan_arms(root: Path) -> list[str]:
    return json.loads((root / "ablation" / "plan.json").read_text())["arms"]


def training_shares(root: Path) -> list[dict]:
    """Per arm run: training tokens by mixture part as phase 3 packed them, and the translated share."""
    p = json.loads((root / "ablation" / "plan.json").read_text())
    out = []
    for r in p["runs"]:
        m_file = root / r["dir"] / paths.PHASE_NAMES["pretraining"] / "manifest.json"
        if not m_file.exists():
            continue
        m = json.loads(m_file.read_text())
        metrics = m.get("metrics") or {}
        parts = metrics.get("train_tokens_by_part") or {}
        total = metrics.get("train_tokens") or sum(parts.values()) or None
        tr = parts.get("translated", 0)
        out.append({"arm": r["arm"], "seed": r["seed"], "train_tokens": total, "tokens_by_part": parts,
                    "translated_share": (tr / sum(parts.values())) if parts and sum(parts.values()) else None,
                    "steps": metrics.get("steps"), "heldout_ppl_after": metrics.get("heldout_ppl_after")})
    return out
