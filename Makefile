# Two commands from a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGES ?=

.PHONY: install demo test check lint typecheck layers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,test,demo]"
	touch $@

install: $(VENV)/.installed

# Detect and verify faces on sample photos (or your own: make demo IMAGES="a.jpg b.jpg").
demo: install
	$(PY) examples/demo.py $(IMAGES)

# The checks first (lint, types, layers: seconds), then the test suite.
test: check
	$(PY) -m pytest -q

check: lint typecheck layers

lint: install
	$(VENV)/bin/ruff check src tests bench examples

typecheck: install
	$(VENV)/bin/mypy

layers: install
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
