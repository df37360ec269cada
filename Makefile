# Two entry points do all set-up on a fresh machine:
#   make study   runs the main job and writes results/
#   make test    runs the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup data study train test clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

data: setup
	$(BIN)/python -m ifm_core.mnist

# One shiftedMNIST run with the defaults of notebooks/02_train.ipynb.
train: data
	$(BIN)/papermill notebooks/02_train.ipynb results/02_train.ipynb --cwd notebooks

study: train

test: setup
	$(BIN)/python -m pytest

clean-runs:
	rm -rf results/runs
