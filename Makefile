# loopline's developer entry points. From a fresh clone, with only python3 (3.11+) and pip:
#   make demo   create .venv, install, run the closed loop (train, gate, serve, drift, retrain, promote)
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

.PHONY: help demo test test-slow bench lint format clean distclean ui

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "loopline needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
		echo "Try: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall when pyproject.toml changes, not on every run.
# river: the loop's real data (its bundled Statlog Shuttle file).
$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[sklearn]' matplotlib river
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,sklearn]'
	@touch $@

# The web UI: built into the package (served by `loopline server`) when missing or stale.
UI_INDEX := src/loopline/server/static/index.html
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/package.json

ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund

$(UI_INDEX): ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && npm run build

ui: $(UI_INDEX) ## Build the web UI's assets when missing; install Chromium (browser tests) when missing
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
		else echo "note: install Chromium (Debian: apt-get install chromium) to run the browser tests"; fi; }

demo: ui $(VENV)/.demo-installed ## The closed loop: train, gate, serve, drift, alert, retrain, canary, promote
	LOOPLINE_HOME="$(LOOPLINE_HOME)" $(PY) -m loopline.demo.loop

test: ui $(VENV)/.test-installed ## Lint, type-check and run the tests (not the slow ones)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow" -n auto $(PYTEST_ARGS)

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
