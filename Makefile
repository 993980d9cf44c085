# roadseg: the two set-up commands of the README.
#   make demo   create .venv, install roadseg, run its main job on sample data
#   make test   create .venv with the test extra, run ruff and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.roadseg-installed

.PHONY: demo test quick-test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check roadseg cli tests benchmarks examples

test: lint
	$(BIN)/python -m pytest

quick-test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .hypothesis
