# fedpetition: `make test` and `make run` work on a fresh clone with nothing installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR := var/run
# axe-core, which the browser tests inject into the pages they check (npm registry).
AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: all venv test lint typecheck unit run simulate bench bench-full vectors clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py fedpetition/core/_bundlehash.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/browser && npm ci --no-audit --no-fund --silent && touch node_modules/axe-core/axe.min.js; \
	else \
		echo "npm not found: the browser tests will skip their accessibility checks"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check fedpetition tests spec/vectors benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy fedpetition

unit: $(STAMP) $(AXE)
	$(BIN)/pytest -q

test: lint typecheck unit

# The main job: a local federation of three nodes (nodes/*.toml, data in
# var/nodes) co-hosting a petition, simulated signers, and the federated tally
# verified. Ctrl-C stops it; running it again reuses the nodes.
run: $(STAMP)
	$(BIN)/fedpetition demo nodes/a.toml nodes/b.toml nodes/c.toml

# Simulate a federation's published logs, verify them, check one signer's receipt.
simulate: $(STAMP)
	@mkdir -p $(RUN_DIR)
	$(BIN)/fedpetition simulate --nodes 3 --signatures 30000 --duplicates 1200 \
		--withdrawals 300 --seed 2016 --out $(RUN_DIR)/federation.zip \
		--receipt $(RUN_DIR)/receipt.fpr
	$(BIN)/fedpetition verify $(RUN_DIR)/federation.zip
	$(BIN)/fedpetition verify-receipt $(RUN_DIR)/receipt.fpr

vectors: $(STAMP)
	$(BIN)/python spec/vectors/generate.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.run --full

clean:
	rm -rf $(VENV) var bench-out .pytest_cache .mypy_cache .ruff_cache .hypothesis
