# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL ?= rf_radiomics
ARGS ?=
PYTEST_ARGS ?=

FIXTURES ?= .fixtures

.PHONY: setup run test test-slow lint fixtures

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# pyradiomics' sdist imports numpy in its setup.py: install its build needs first and build
	# it without isolation (3.0.1: the 3.1.0 sdist lacks its C headers, see README).
	$(PY) -m pip install --quiet numpy==2.3.5 setuptools wheel versioneer
	$(PY) -m pip install --quiet --no-build-isolation pyradiomics==3.0.1
	# compat editable mode: Hydra finds namespace plugins (hydra_plugins/) only on a plain path.
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@

setup: $(STAMP)

run: $(STAMP)  ## one model through the protocol on the simulated default cohorts
	$(PY) -m benchmark model=$(MODEL) $(ARGS)

# Real CT, real DICOM and pyradiomics' reference values for the tests, fetched by pinned hash into
# a git-ignored folder (tests/fetch_fixtures.py); the tests that need them fail without them.
$(FIXTURES)/READY.json: tests/fetch_fixtures.py $(STAMP)
	NSCLC_IO_BENCH_FIXTURES=$(abspath $(FIXTURES)) $(PY) tests/fetch_fixtures.py $(FIXTURES)

fixtures: $(FIXTURES)/READY.json

test: $(STAMP) fixtures  ## the default (fast) test suite, as CI runs it
	NSCLC_IO_BENCH_FIXTURES=$(abspath $(FIXTURES)) $(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP) fixtures
	NSCLC_IO_BENCH_FIXTURES=$(abspath $(FIXTURES)) $(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
