# lightning-snn: `make run` trains the default experiment, `make test` runs the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench install clean docs docs-fast

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: any later requirement is satisfied by it, so no CUDA build is pulled.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# spikingjelly declares torchvision/torchaudio as hard dependencies, which we never import.
	$(BIN)/pip install --quiet --no-deps spikingjelly==2.0.0
	touch $(STAMP)

install: $(STAMP)

# The docs tooling (the `docs` extra) is installed only by the docs targets, after torch, so `make test`
# does not pay for it.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

# Sphinx: -W warnings are errors, -n broken cross-references are errors, -E no stale environment.
SPHINX := $(BIN)/python -m sphinx -b html -n -W --keep-going -E -q docs build/docs/html

# The site with the tutorials executed (their figures are drawn by this build): a few minutes on 2 CPU cores.
docs: $(DOCS_STAMP)
	$(SPHINX)
	@echo "docs: build/docs/html/index.html"

# The same strict build without executing the tutorials (what CI runs).
docs-fast: $(DOCS_STAMP)
	$(SPHINX) -D plot_gallery=0
	@echo "docs: build/docs/html/index.html"

run: $(STAMP)
	$(BIN)/python -m lightning_snn fit --config configs/mtsxor.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# One pytest-xdist worker per core (tests/conftest.py keeps each worker on one thread).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/lif_speed.py
	$(BIN)/python benchmarks/delay_speed.py
	$(BIN)/python benchmarks/ssm_speed.py
	$(BIN)/python benchmarks/data_speed.py

clean:
	rm -rf $(VENV) logs lightning_logs wandb build/docs docs/build
