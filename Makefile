# maskwatch — every target creates .venv on first use, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP   := $(VENV)/.installed-dev
DATA    ?= ../shared/data/prajna
NAME    ?= inception

.PHONY: setup test clean

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

setup: $(STAMP)  ## create .venv with everything a workstation needs

test: $(STAMP)  ## run the whole test suite
	$(PYTHON) -m pytest

clean:  ## remove the venv and caches (keeps models)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
