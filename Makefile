# Two commands from a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGES ?=

.PHONY: install install-models demo test check lint typecheck layers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,test,demo]"
	touch $@

install: $(VENV)/.installed

# The model pack of the default pipeline, fetched with npm's own client and checked against the
# hashes pinned in faceprint (README "Model packs"); a no-op when it is already installed.
install-models: install
	$(VENV)/bin/faceprint models install faceplugin

# Detect and verify faces on sample photos (or your own: make demo IMAGES="a.jpg b.jpg").
# Without npm (or a network) the pack is not installed and the demo runs dlib's models.
demo: install
	-$(MAKE) --no-print-directory install-models
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
