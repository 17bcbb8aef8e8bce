"""``openai`` backend: generation through any OpenAI-compatible HTTP server (vLLM serve, TGI, llama.cpp server, ``transformers serve``).

This is how a notebook on a laptop drives a 70B model on a GPU box: requests go out with bounded
concurrency, each with a timeout and retries (connection errors, 429 and 5xx, exponential backoff).
The API key is read from the environment variable named by ``api_key_env`` at request time; it is never
stored in parameters, in ``info()``, in ``repr`` or in error messages.

``serve="vllm"``: the backend starts ``vllm serve`` for the model itself (``generation.vllm_server``), on the port
of ``base_url`` (port 0: a free one), and stops it in ``close()``. The model spec is then a kit spec or folder
(resolved to the folder vLLM loads) and is also the served model name. Such a server continues an assistant
message (``continue_final_message``, a vLLM/SGLang chat extension), so translation prefills its block headers
through ``continue_chat`` without knowing the tokenizer; ``continue_final_message=True`` says the same of a server
you run.
"""
from __future__ import annotations

import re

import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

from mathcode.generation.base import Completion, GenConfig, Generator, truncate_at_stop


class ServerError(RuntimeError):
    """The server could not be reached or refused the request; the message names the URL."""


class OpenAIGenerator(Generator):
    backend = "openai"

    def __init__(self, model: str, *, base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout: float = 300.0, retries: int = 3, backoff: float = 1.0,
                 tokenizer: str | None = None, max_stop: int = 4, serve: str = "", serve_args="",
                 continue_final_message: bool | None = None, serve_ready_s: float = 900.0,
                 serve_log: str | None = None, **_ignored):
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.server = None
        if serve not in ("", None, "none", "vllm"):
            raise ValueError(f"serve={serve!r}: write 'vllm' (the kit starts `vllm serve` for the model) or leave it "
                             f"empty (a server you run at base_url)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env or ""):
            raise ValueError("api_key_env must be the NAME of an environment variable holding the key (e.g. "
                             "OPENAI_API_KEY), not the key itself")
        self.api_key_env = api_key_env
        self.concurrency = max(1, int(concurrency))
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.max_stop = max_stop
        self._tokenizer_spec = tokenizer
        self._tok = None
        self.continue_final_message = bool(continue_final_message)
        import requests
        self._session = requests.Session()
        if serve == "vllm":
            self._start_vllm(serve_args, serve_ready_s, serve_log)
            self.continue_final_message = continue_final_message is not False

    def _start_vllm(self, args, ready_s: float, log_path=None) -> None:
        from mathcode.generation.vllm_server import VLLMServer
        from mathcode.models import resolve
        folder = resolve(self.model_spec).path
        parts = urlsplit(self.base_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
            raise ValueError(f"serve='vllm' starts the server locally, but base_url {self.base_url!r} names "
                             f"another host; use http://127.0.0.1:PORT/v1 (port 0: a free one)")
        self.server = VLLMServer(folder, served_name=self.model_spec, host=parts.hostname, port=parts.port or 0,
                                 args=args, ready_s=ready_s, log_path=log_path).start()
        self.base_url = urlunsplit((parts.scheme, f"{parts.hostname}:{self.server.port}", parts.path.rstrip("/"),
                                    "", ""))
        self._tokenizer_spec = self._tokenizer_spec or folder

    def __repr__(self):
        return f"OpenAIGenerator(model={self.model_spec!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def info(self) -> dict:
        out = {**super().info(), "base_url": self.base_url, "api_key_env": self.api_key_env,
               "api_key_set": bool(os.environ.get(self.api_key_env or "")), "concurrency": self.concurrency,
               "continue_final_message": self.continue_final_message}
        if self.server is not None:
            out["managed_server"] = {"command": "vllm serve (python -m " + "vllm.entrypoints.openai.api_server)",
                                     "model_folder": self.server.model, "port": self.server.port,
                                     "startup_s": round(self.server.startup_s or 0.0, 1), "log": str(self.server.log_path)}
        return out

    # --- display ----------------------------------------------------------------------------------
    def render_chat(self, messages: list[dict]) -> str:
        """The prompt as the model sees it when a tokenizer is known; otherwise a labelled plain rendering
        (the server applies its own chat template, which we cannot see)."""
        if self._tokenizer_spec:
            if self._tok is None:
                from mathcode.models import load_tokenizer
                self._tok = load_tokenizer(self._tokenizer_spec)
            return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        body = "".join(f"<{m['role']}>\n{m['content']}\n</{m['role']}>\n" for m in messages)
        return "[the server applies the model's chat template; roles shown as tags]\n" + body

    # --- HTTP -------------------------------------------------------------------------------------
    def _headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def _post(self, route: str, payload: dict) -> dict:
        import requests
        url = f"{self.base_url}/{route}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                r = self._session.post(url, json=payload, headers=self._headers(), timeout=self.timeout)
            except requests.exceptions.Timeout:
                last = f"no answer within {self.timeout:g} s"
                continue
            except requests.exceptions.RequestException as e:
                last = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code >= 400:
                raise ServerError(f"{url} refused the request: HTTP {r.status_code}: {r.text[:300]} "
                                  f"(check model name {self.model_spec!r}"
                                  + (f" and the key in ${self.api_key_env})" if self.api_key_env else ")"))
            try:
                return r.json()
            except ValueError:
                last = f"answer is not JSON: {r.text[:200]}"
        raise ServerError(f"could not get an answer from {url} after {self.retries + 1} attempts ({last}); "
                          f"is the server running at {self.base_url}?")

    def _payload(self, cfg: GenConfig) -> dict:
        p = {"model": self.model_spec, "max_tokens": cfg.max_new_tokens, "temperature": float(cfg.temperature),
             "seed": cfg.seed}
        if cfg.temperature and cfg.top_p < 1.0:
            p["top_p"] = cfg.top_p
        if cfg.stop:
            p["stop"] = list(cfg.stop)[: self.max_stop]
        return p

    def _finish(self, text: str, choice: dict, usage: dict, cfg: GenConfig) -> Completion:
        text, hit = truncate_at_stop(text or "", cfg.stop)
        reason = "stop" if hit else (choice.get("finish_reason") or "stop")
        return Completion(text=text, prompt_tokens=int((usage or {}).get("prompt_tokens") or 0),
                          completion_tokens=int((usage or {}).get("completion_tokens") or 0),
                          finish_reason="length" if reason == "length" else "stop")

    def _one_chat(self, messages, cfg):
        d = self._post("chat/completions", {**self._payload(cfg), "messages": messages})
        ch = (d.get("choices") or [{}])[0]
        return self._finish((ch.get("message") or {}).get("content", ""), ch, d.get("usage"), cfg)

    def _one_continue(self, messages, cfg):
        d = self._post("chat/completions", {**self._payload(cfg), "messages": messages,
                                            "continue_final_message": True, "add_generation_prompt": False})
        ch = (d.get("choices") or [{}])[0]
        return self._finish((ch.get("message") or {}).get("content", ""), ch, d.get("usage"), cfg)

    def continue_chat(self, conversations: list[list[dict]], cfg: GenConfig | None = None) -> list:
        """Continue each conversation's final (assistant) message; the text returned is only the continuation.
        Needs a server with ``continue_final_message`` (vLLM, SGLang)."""
        if not self.continue_final_message:
            raise ServerError(f"{self.base_url}: continue_chat needs a server that continues the final message "
                              f"(vLLM/SGLang); set continue_final_message=True if yours does")
        bad = [i for i, c in enumerate(conversations) if not c or c[-1].get("role") != "assistant"]
        if bad:
            raise ValueError(f"continue_chat: conversation {bad[0]} does not end with an assistant message to continue")
        return self._timed(lambda convs, c: self._map(self._one_continue, convs, c), list(conversations),
                           cfg or GenConfig())

    def _one_complete(self, prompt, cfg):
        d = self._post("completions", {**self._payload(cfg), "prompt": prompt})
        ch = (d.get("choices") or [{}])[0]
        return self._finish(ch.get("text", ""), ch, d.get("usage"), cfg)

    def _map(self, fn, items, cfg):
        if not items:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(items))) as ex:
            return list(ex.map(lambda x: fn(x, cfg), items))

    def _chat(self, conversations, cfg):
        return self._map(self._one_chat, conversations, cfg)

    def _generate(self, prompts, cfg):
        return self._map(self._one_complete, prompts, cfg)

    def close(self):
        self._session.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
