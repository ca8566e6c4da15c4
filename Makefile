# The project's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint parity bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[viz]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## demo: install Ember and train an MLP on the bundled digits (no network needed)
demo: $(VENV)/.installed
	$(BIN)/ember train --dataset digits --model mlp --epochs 20 --output digits_mlp.ember
	$(BIN)/ember evaluate digits_mlp.ember --dataset digits

## test: install the dev extras (pytest, ruff, torch 2.13.0 CPU) and run the test suite
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

## parity: only the PyTorch parity tests, failing (not skipping) if torch is missing; then every
## parity test again, and the op table (gradcheck included), on the NumPy reference path
## (EMBER_KERNELS=numpy): both kernel selections must pass
parity: $(VENV)/.installed-dev
	EMBER_REQUIRE_TORCH=1 $(BIN)/python -m pytest -q -m parity
	EMBER_KERNELS=numpy EMBER_REQUIRE_TORCH=1 $(BIN)/python -m pytest -q -m parity
	EMBER_KERNELS=numpy EMBER_REQUIRE_TORCH=1 $(BIN)/python -m pytest -q \
		tests/test_ops.py tests/test_conv_ops.py tests/test_conv_layers.py tests/test_optimizers.py

## bench: the benchmarks against PyTorch (MLP and convnet need Fashion-MNIST; not part of CI)
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/mlp.py --epochs 1 --repeats 3
	$(BIN)/python benchmarks/convnet.py --epochs 1 --repeats 3
	$(BIN)/python benchmarks/lstm_lm.py
	$(BIN)/python benchmarks/transformer.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache digits_mlp.ember
