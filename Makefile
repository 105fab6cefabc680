# lightning-snn: `make run` trains the default experiment, `make test` runs the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench install clean

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

run: $(STAMP)
	$(BIN)/python -m lightning_snn fit --config configs/mtsxor.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/lif_speed.py
	$(BIN)/python benchmarks/delay_speed.py
	$(BIN)/python benchmarks/ssm_speed.py
	$(BIN)/python benchmarks/data_speed.py

clean:
	rm -rf $(VENV) logs lightning_logs wandb
