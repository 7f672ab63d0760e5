# trenv — the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo demo-stop clean screenshots labextension

$(STAMP): pyproject.toml
	scripts/install-system.sh venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[hub,lab,models,dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	scripts/install-system.sh postgres chromium zip
	scripts/install-docker.sh
	scripts/install-proxy.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Refresh the guides' screenshots (docs/screenshots) by running the browser tests.
screenshots: $(STAMP)
	TRENV_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -k browser $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP)
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The JupyterLab extension (labextension/ -> trenv/lab/labextension, committed so that the
# offline image build needs no node; docs/lab.md). Run after editing labextension/, commit both.
labextension:
	cd labextension && npm ci --no-audit --no-fund && node scripts/build.mjs
