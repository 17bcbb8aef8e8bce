"""The OpenAI-compatible backend against a REAL server: `transformers serve` on loopback with the embedded model."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mathcode.generation import GenConfig, make_generator
from mathcode.generation.openai import ServerError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(embedded_model_dir, tmp_path_factory):
    from served_model import transformers_serve
    with transformers_serve(embedded_model_dir, tmp_path_factory.mktemp("serve"), ready_s=180) as url:
        yield {"base_url": url + "/v1", "model": str(embedded_model_dir)}


def test_chat_and_complete_through_real_server(server, monkeypatch):
    monkeypatch.setenv("MATHCODE_TEST_KEY", "sk-do-not-leak-42")
    g = make_generator("openai", model=server["model"], base_url=server["base_url"],
                       api_key_env="MATHCODE_TEST_KEY", concurrency=2, timeout=120, retries=1)
    convs = [[{"role": "user", "content": "What is 2 + 3? Answer with a number."}],
             [{"role": "user", "content": "Name a prime number."}]]
    out = g.chat(convs, GenConfig(max_new_tokens=12))
    assert len(out) == 2 and all(c.text.strip() for c in out)
    assert all(c.completion_tokens > 0 for c in out), "usage from the server is counted"
    assert g.stats["requests"] == 2 and g.stats["completion_tokens"] > 0
    comp = g.complete(["The capital of France is"], GenConfig(max_new_tokens=6))
    assert comp[0].text.strip()
    # the key is used for requests but never appears in what we display or record
    shown = repr(g) + str(g.info()) + g.render_chat(convs[0])
    assert "sk-do-not-leak-42" not in shown
    assert g.info()["api_key_set"] is True and g.info()["api_key_env"] == "MATHCODE_TEST_KEY"


def test_stop_strings_are_honoured(server):
    g = make_generator("openai", model=server["model"], base_url=server["base_url"], retries=1)
    out = g.chat([[{"role": "user", "content": "Count from 1 to 20 separated by commas."}]],
                 GenConfig(max_new_tokens=40, stop=["5"]))
    assert "5" not in out[0].text


def test_unreachable_server_names_the_url():
    from served_model import free_port
    port = free_port()                      # bound then released: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    g = make_generator("openai", model="m", base_url=url, retries=1, backoff=0.01, timeout=5)
    with pytest.raises(ServerError) as e:
        g.chat([[{"role": "user", "content": "hi"}]], GenConfig(max_new_tokens=4))
    assert url in str(e.value)
