# Two commands do all the set-up on a fresh machine with Python 3.11 and pip:
#   make demo   create .venv, install, and draft the bundled sample incident offline
#   make test   the same set-up, then lint, type checks, the whole test suite and the eval gate
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit evals bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Pinned exactly: a looser range pulls a CUDA build of several GB.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,embeddings]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/retro demo --out out/demo-postmortem.md

lint: $(STAMP)
	$(BIN)/ruff check retro connectors tests evals bench
	$(BIN)/ruff format --check retro connectors tests evals bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

evals: $(STAMP)
	$(BIN)/python -m evals --engine offline --gate

test: lint typecheck unit evals

bench: $(STAMP)
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/draft.py
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
