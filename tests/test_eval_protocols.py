"""Protocols, lm-eval-compatible scoring, resume keys, sampling (maj@k / pass@k), chat mode.

The generator here replays answers (a test double for the generation layer); the real-model paths are in
test_eval_e2e.py and bench/bench_eval_lmeval.py."""
import json

import pytest

from mathcode.evaluate import harness, protocols as PR
from mathcode.evaluate.benchmarks import Item
from mathcode.generation import Completion, Generator

ITEMS = [Item("gsm8k", "a", "Tom has 3 apples and buys 4 more. How many apples?", "7", "number"),
         Item("gsm8k", "b", "What is 10 - 4?", "6", "number")]


class Replay(Generator):
    """Answers from a table keyed by (question fragment, seed); records every request."""
    backend = "replay"

    def __init__(self, answers):
        super().__init__("replay")
        self.answers, self.calls = answers, []

    def render_chat(self, messages):
        return json.dumps(messages)

    def _generate(self, prompts, cfg):
        self.calls.append((prompts, cfg))
        out = []
        for p in prompts:
            key = "a" if "3 apples and buys" in p[-200:] else "b"
            out.append(Completion(self.answers[key][cfg.seed % len(self.answers[key])], 10, 5, "stop"))
        return out


def test_paper_protocol_is_the_kit_prompt():
    from mathcode.evaluate.fewshot import build_prompt
    p = PR.get_protocol("paper")
    assert p.build(ITEMS[0], "gsm8k") == build_prompt(ITEMS[0], 4) and p.n_shots == 4
    assert PR.get_protocol("paper", 0).build(ITEMS[0], "gsm8k") == "Question: " + ITEMS[0].question + "\nAnswer:"
    with pytest.raises(PR.ProtocolError, match="use one of"):
        PR.get_protocol("gsm9k")


def test_lm_eval_protocols_read_lm_evals_own_exemplars():
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (the protocols extra: pip install -e '.[protocols]')")
    cot = PR.get_protocol("lm_eval_gsm8k_cot")
    text = cot.build(ITEMS[0], "gsm8k")
    assert text.count("Q: ") == 9 and text.endswith(f"Q: {ITEMS[0].question}\nA:") and "The answer is 6." in text
    assert cot.stop == ["Q:", "</s>", "<|im_end|>"] and cot.n_shots == 8
    mm = PR.get_protocol("minerva_math").build(Item("math", "m", "Compute $1+1$.", "2", "math"), "math")
    assert mm.startswith("Problem:\n") and mm.count("Problem:\n") == 5 and mm.endswith("Solution:")
    assert "Final Answer: The final answer is $24$. I hope it is correct." in mm
    chat = cot.build_chat(ITEMS[0], "gsm8k")
    assert [m["role"] for m in chat] == ["user", "assistant"] * 8 + ["user"]


def test_mmlu_protocol_format_and_letter():
    it = Item("mmlu_math", "x", "What is 2+2?", "B", "choice", choices=["3", "4", "5", "6"],
              meta={"subject": "elementary_mathematics"})
    p = PR.get_protocol("mmlu_5shot", fewshot_file=None)
    text = p.build(it, "choice")
    assert text.startswith("The following are multiple choice questions (with answers) about elementary mathematics.")
    assert text.endswith("What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")
    assert harness.score(it, " B", scorer="mmlu")["correct"] and not harness.score(it, " C. 5", scorer="mmlu")["correct"]


@pytest.mark.parametrize("completion,strict,flex", [
    (" Tom has 3 + 4 = 7 apples. The answer is 7.", True, True),
    (" 3 + 4 = 7. The answer is 7 apples.", True, True),           # strict's final "." is any character
    (" 3 + 4 = 7. The answer is seven.", False, True),
    (" The answer is 7", False, True),                               # no character after the number
    (" He has 7 apples, 14 halves.", False, False),                  # flexible takes the LAST number
    (" The answer is $7.", False, True),                             # "$" is not in strict's class; flexible reads "$7."
    (" The answer is 7.00. ", False, False),
])
def test_lm_eval_gsm8k_cot_scoring_rules(completion, strict, flex):
    s = PR.lm_eval_gsm8k_scores(completion, "7", cot=True)
    assert (s["strict_match"], s["flexible_extract"]) == (strict, flex)


def test_resume_is_keyed_on_settings_and_repairs_a_torn_line(tmp_path):
    out = tmp_path / "items.jsonl"
    gen = Replay({"a": ["The answer is 7."], "b": ["The answer is 6."]})
    m = harness.EvalModel("base", "embedded:x")
    rows = harness.evaluate(gen, ITEMS, model=m, out_path=out, max_new_tokens=48, progress=False)
    assert [r["correct"] for r in rows] == [True, True] and len(gen.calls) == 1
    harness.evaluate(gen, ITEMS, model=m, out_path=out, max_new_tokens=48, progress=False)
    assert len(gen.calls) == 1                                                    # reused
    harness.evaluate(gen, ITEMS, model=m, out_path=out, max_new_tokens=8, progress=False)
    assert len(gen.calls) == 2                                                    # new setting -> regenerated
    harness.evaluate(gen, ITEMS, model=harness.EvalModel("base", "other-spec"), out_path=out, max_new_tokens=8,
                     progress=False)
    assert len(gen.calls) == 3                                                    # same label, other model
    n_lines = len(out.read_text().splitlines())
    with open(out, "a") as fh:
        fh.write('{"model": "base", "benchm')                                     # a write cut by a crash
    again = harness.evaluate(gen, ITEMS, model=m, out_path=out, max_new_tokens=48, progress=False)
    assert len(gen.calls) == 3 and again == rows
    harness.evaluate(gen, ITEMS, model=m, out_path=out, max_new_tokens=16, progress=False)
    lines = out.read_text().splitlines()
    assert len(lines) == n_lines + 2 and all(json.loads(l) for l in lines)       # torn line gone, file valid


def test_adapter_fingerprint_is_content_not_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, w in ((a, b"weights-1"), (b, b"weights-1")):
        d.mkdir()
        (d / "adapter_config.json").write_text("{}")
        (d / "adapter_model.safetensors").write_bytes(w)
    assert harness.adapter_fingerprint(a) == harness.adapter_fingerprint(b)
    (b / "adapter_model.safetensors").write_bytes(b"weights-2")
    assert harness.adapter_fingerprint(a) != harness.adapter_fingerprint(b)


def test_sampling_majority_and_pass_at_k(tmp_path):
    gen = Replay({"a": ["The answer is 7.", "The answer is 8.", "The answer is 7.", "The answer is 9."],
                  "b": ["The answer is 5.", "The answer is 5.", "The answer is 6.", "The answer is 5."]})
    rows = harness.evaluate(gen, ITEMS, model=harness.EvalModel("m", "s"), out_path=tmp_path / "i.jsonl",
                            n_samples=4, temperature=0.7, top_p=0.95, progress=False)
    assert {c[1].seed for c in gen.calls} == {0, 1, 2, 3}                          # one seed per sample
    a, b = rows
    assert a["extracted"] == "7" and a["correct"] and a["n_correct"] == 2 and a["pass_at"]["1"] == 0.5
    assert b["extracted"] == "5" and not b["correct"] and b["pass_at"]["4"] == 1.0
    with pytest.raises(ValueError, match="set temperature"):
        harness.evaluate(gen, ITEMS, model=harness.EvalModel("m", "s"), out_path=tmp_path / "i.jsonl", n_samples=3)
    from mathcode.evaluate.compare import sampling_table
    t = sampling_table(rows)
    assert t.loc[0, "maj@n"] == 0.5 and t.loc[0, "pass@n"] == 1.0


def test_pass_at_k_estimator():
    assert harness.pass_at_k(4, 0, 1) == 0 and harness.pass_at_k(4, 4, 1) == 1
    assert harness.pass_at_k(4, 1, 1) == pytest.approx(0.25) and harness.pass_at_k(4, 1, 4) == 1.0


def test_lm_eval_gsm8k_draws_shots_from_a_train_file(tmp_path, monkeypatch):
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"})
                         + "\n" for i in range(12)))
    p = PR.get_protocol("lm_eval_gsm8k", fewshot_file=str(f))
    text = p.build(ITEMS[0], "gsm8k", index=3)
    assert text.count("Question: ") == 6 and text.count("#### ") == 5 and text.endswith("How many apples?\nAnswer:")
    assert text == p.build(ITEMS[0], "gsm8k", index=3) != p.build(ITEMS[0], "gsm8k", index=4)   # seeded per item
    s = harness.score(ITEMS[0], " 3 + 4 = 7\n#### 7", scorer="lm_eval_gsm8k")
    assert s["correct"] and s["correct_kit"]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))          # no cached train split
    with pytest.raises(PR.ProtocolError, match="pass fewshot_file="):
        PR.get_protocol("lm_eval_gsm8k").build(ITEMS[0], "gsm8k")


def test_pal_mode_runs_programs_in_the_sandbox_and_resumes(tmp_path):
    from mathcode.evaluate import pal

    class Coder(Replay):
        def _chat(self, conversations, cfg):
            self.calls.append((conversations, cfg))
            return [Completion("```python\nprint(3 + 4)\n```", 10, 5, "stop"),
                    Completion("```python\nwhile True: pass\n```", 10, 5, "stop")][:len(conversations)]
    gen = Coder({})
    Sandbox, Limits = pal.sandbox_api()
    with Sandbox(workers=1, limits=Limits(timeout=2.0)) as sb:
        rows = pal.evaluate_pal(gen, ITEMS, model=harness.EvalModel("m", "s"), out_path=tmp_path / "pal.jsonl",
                                sandbox=sb, progress=False)
        assert [r["program_status"] for r in rows] == ["ok", "timeout"]
        assert rows[0]["correct"] and rows[0]["extracted"] == "7" and not rows[1]["correct"]
        pal.evaluate_pal(gen, ITEMS, model=harness.EvalModel("m", "s"), out_path=tmp_path / "pal.jsonl",
                         sandbox=sb, progress=False)
    assert len(gen.calls) == 1


def test_kit_scores_captured_real_outputs_as_lm_eval_did():
    """Completions of Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, llama.cpp server) on GSM8K test items under lm-eval's
    gsm8k-cot task, with lm-eval 0.4.13's own per-item verdicts (captured by bench/bench_eval_lmeval.py)."""
    from pathlib import Path
    f = Path(__file__).parent / "fixtures" / "qwen2.5-coder-0.5b_gsm8k-cot_lm-eval.jsonl"
    rows = [json.loads(l) for l in f.read_text().splitlines()]
    assert len(rows) >= 10
    for r in rows:
        s = PR.lm_eval_gsm8k_scores(r["completion"], r["gold"], cot=True)
        assert (s["strict_match"], s["flexible_extract"]) == (r["lm_eval_strict_match"], r["lm_eval_flexible_extract"]), r


def test_every_registered_protocol_is_one_complete_entry():
    """Each protocol is one registry entry carrying everything the harness needs; an unknown name is refused with
    the list of known ones (the names param validation uses)."""
    import dataclasses
    assert set(PR.PROTOCOLS) >= {"paper", "minerva_math", "lm_eval_gsm8k_cot", "lm_eval_gsm8k", "mmlu_5shot"}
    item = Item("mmlu_math", "x", "What is 2+2?", "B", "choice", choices=["3", "4", "5", "6"],
                meta={"subject": "elementary_mathematics"})
    for name, spec in PR.PROTOCOLS.items():
        assert spec.name == name
        for f in dataclasses.fields(spec):
            if f.name not in ("max_shots", "exemplar_source"):          # None there means "no cap" / "set when read"
                assert getattr(spec, f.name) is not None, (name, f.name)
        assert spec.description and spec.n_shots > 0 and spec.stop and all(isinstance(s, str) for s in spec.stop)
        assert callable(spec.question) and callable(spec.shots) and callable(spec.header)
        assert isinstance(spec.question(item), str) and isinstance(spec.header(item), str)
        scorer = PR.get_scorer(spec.scorer)                               # its scorer is registered
        assert callable(scorer.score) and set(scorer.score(item, " B", 0.0)) >= {"extracted", "extraction", "correct"}
        p = PR.get_protocol(name, 0)                                      # zero-shot needs no exemplar source
        assert p.spec is spec and p.stop == list(spec.stop) and p.scorer == spec.scorer
        assert p.build(item, "choice") == spec.header(item) + spec.question(item)
        assert p.settings() == {"protocol": name, "n_shots": 0, "stop": list(spec.stop), "scorer": spec.scorer,
                                "fewshot_file": None}
    with pytest.raises(PR.ProtocolError) as e:
        PR.get_protocol("gsm9k")
    assert "gsm9k" in str(e.value) and all(n in str(e.value) for n in PR.PROTOCOLS)
    with pytest.raises(PR.ProtocolError, match="scorer 'nope'"):
        PR.register_protocol(dataclasses.replace(PR.PROTOCOLS["paper"], name="bad", scorer="nope"))
    assert "bad" not in PR.PROTOCOLS


def test_a_registered_protocol_is_used_by_the_harness(tmp_path, monkeypatch):
    """A new protocol is one register_protocol call: the harness prompts, stops and scores with it."""
    spec = PR.ProtocolSpec("plain_qa", n_shots=1, stop=("Q:",), question=lambda it: f"Q: {it.question.strip()}\nA:",
                           shots=lambda p, it, fam, i: [PR.Shot("Q: 1+1?\nA:", "2")][:p.n_shots], scorer="kit",
                           exemplar_source="written here", description="test protocol")
    monkeypatch.setitem(PR.PROTOCOLS, "plain_qa", spec)
    gen = Replay({"a": ["The answer is 7."], "b": ["The answer is 5."]})
    rows = harness.evaluate(gen, ITEMS, model=harness.EvalModel("m", "s"), out_path=tmp_path / "i.jsonl",
                            protocol="plain_qa", progress=False)
    prompts, cfg = gen.calls[0]
    assert prompts[0] == f"Q: 1+1?\nA: 2\n\nQ: {ITEMS[0].question}\nA:" and cfg.stop == ["Q:"]
    assert [r["correct"] for r in rows] == [True, False] and rows[0]["protocol"] == "plain_qa"
