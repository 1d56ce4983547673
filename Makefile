# loopline's developer entry points. From a fresh clone, with only python3 (3.11+) and pip:
#   make demo   create .venv, install, train and track real models, print the comparison
#   make test   install the test extras, lint, type-check, run the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check
# Where `make demo` keeps its store (the embedded SQLite database and blobs).
LOOPLINE_HOME ?= $(CURDIR)/.loopline
PYTEST_ARGS ?=
# For example: make bench BENCH_ARGS="--quick --only tracking"
BENCH_ARGS ?=

.PHONY: help demo test test-slow bench lint format clean distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "loopline needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
		echo "Try: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall when pyproject.toml changes, not on every run.
$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[sklearn]' matplotlib
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,sklearn]'
	@touch $@

demo: $(VENV)/.demo-installed ## Train and track several models, print the comparison
	LOOPLINE_HOME="$(LOOPLINE_HOME)" $(PY) -m loopline.demo

test: $(VENV)/.test-installed ## Lint, type-check and run the tests (not the slow ones)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: $(VENV)/.test-installed ## Run the slow tests
	$(BIN)/pytest -q -m slow $(PYTEST_ARGS)

bench: $(VENV)/.test-installed ## Run the benchmarks side by side with the peers
	$(PY) benchmarks/run.py $(BENCH_ARGS)

lint: $(VENV)/.test-installed ## ruff (lint and format check) and mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(VENV)/.test-installed ## Format the code and apply safe lint fixes
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean: ## Remove caches and build output
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .bench src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## Also remove the virtual environment and the demo's store
	rm -rf $(VENV) .loopline
