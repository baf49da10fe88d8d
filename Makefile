# Two entry points for a fresh machine (see README):
#   make main   set up .venv and run the main job: the quick screen (<= 20 min on 2 cores)
#   make test   set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup main test lint clean

# torch first, from the local CPU wheel: installed through the dependency list alone, pip would
# fetch the CUDA build and several GB of nvidia packages.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

main: setup
	$(BIN)/emoloom screen configs/quick.yaml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
