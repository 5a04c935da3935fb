# The two quick-start commands (`make train`, `make test`) each set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test install clean

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

## Run the test suite.
test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs *.egg-info
