# The two quick-start commands (`make train`, `make test`) each set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test test-fast docs install clean

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (the project needs Python 3.11; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

install: $(VENV)/.installed

## Train HGFN on the embedded dataset, print the test metrics, export a SavedModel.
train: install
	$(PY) -m training.train --dataset clothing --fusion hgfn --mtl dmtl --output-dir runs/quickstart

## Run the test suite (on every core: pytest-xdist).
test: install
	$(PY) -m pytest -q -n auto

## The fast loop for contributors: everything but the end-to-end CLI runs.
test-fast: install
	$(PY) -m pytest -q -n auto -m "not slow"

## The API reference, from the docstrings: docs/api/hgfn_keras.html.
docs: install
	PDOC_ALLOW_EXEC=1 $(PY) -m pdoc --docformat google hgfn_keras hgfn_quiet -o docs/api

clean:
	rm -rf $(VENV) runs *.egg-info docs/api
