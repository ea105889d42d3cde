# Two entry points: `make demo` (set-up + train on bundled demo data) and `make test` (set-up + suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel here; on GPU machines PyPI serves the CUDA build of the same release.
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo_output
# The Enformer models' code, without its exact transformers pin (see README: Enformer)
ENFORMER_SPEC ?= enformer-pytorch==0.8.12

.PHONY: setup demo test lint clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "$(ENFORMER_SPEC)"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/promoter-modelling demo --output_dir $(DEMO_DIR)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
