# Two entry points do all set-up on a fresh machine:
#   make study   runs the main job (the study on real MNIST) and writes results/report.html
#   make test    runs the test suite (what CI runs)
# `make study PROFILE=quick` runs the small demo grid; PROFILE=full the whole grid.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= default
STUDY := results/studies/$(PROFILE)
REPORT := $(if $(filter default,$(PROFILE)),results/report.html,$(STUDY)/report.html)
PAPERMILL := $(BIN)/papermill --cwd notebooks

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
	$(PAPERMILL) notebooks/02_train.ipynb results/02_train.ipynb

# The study: data tour, sweep (resumable), analysis, report, HTML.
study: data
	mkdir -p $(STUDY)/notebooks
	$(PAPERMILL) notebooks/01_data.ipynb $(STUDY)/notebooks/01_data.ipynb -p profile $(PROFILE)
	$(PAPERMILL) notebooks/03_sweep.ipynb $(STUDY)/notebooks/03_sweep.ipynb -p profile $(PROFILE)
	$(PAPERMILL) notebooks/04_analysis.ipynb $(STUDY)/notebooks/04_analysis.ipynb -p profile $(PROFILE)
	$(PAPERMILL) notebooks/05_report.ipynb $(STUDY)/notebooks/05_report.ipynb -p profile $(PROFILE)
	$(BIN)/python -m ifm_core.report $(STUDY)/notebooks/05_report.ipynb $(REPORT)

test: setup
	$(BIN)/python -m pytest

clean-runs:
	rm -rf results/runs
