# stream-app: `make demo` and `make test` are the two commands a newcomer needs (README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The first of these that exists; it must be 3.11 or newer (checked below).
PYTHON ?= $(firstword $(foreach p,python3.11 python3.12 python3.13 python3,$(shell command -v $(p) 2>/dev/null)))
KAFKA := $(PY) -m stream_app.localkafka

.PHONY: help test check bench demo kafka-up kafka-down kafka-status clean

help:
	@echo "make demo        a seeded day through local Kafka and a worker, then its report"
	@echo "make test        unit + integration tests against a real local Kafka"
	@echo "make check       ruff format --check, ruff check, mypy"
	@echo "make bench       every benchmark under bench/ (figures go to BENCHMARKS.md)"
	@echo "make kafka-up    start the local Kafka (jars cached in .kafka/); kafka-down stops it"
	@echo "make clean       remove .venv, .kafka, data and caches (stops our broker first)"

$(PY):
	@test -n "$(PYTHON)" || { echo "no python3 on PATH: stream-app needs Python 3.11+"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "$(PYTHON) is $$($(PYTHON) -V 2>&1): stream-app needs Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# The broker is started for the run and stopped after it, pass or fail (unless it was
# already up: then it is left running). The exit code is pytest's.
test: $(STAMP)
	$(KAFKA) run -- $(PY) -m pytest tests stream_app schemas agents

check: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

# Speed and calibration figures; never part of make test.
bench: $(STAMP)
	@for b in bench/bench_*.py; do m=$${b%.py}; echo "== $$m"; $(PY) -m $${m//\//.} || exit 1; done

demo: $(STAMP)
	$(PY) -m stream_app.cli demo

kafka-up: $(STAMP)
	$(KAFKA) up

kafka-down: $(STAMP)
	$(KAFKA) down

kafka-status: $(STAMP)
	$(KAFKA) status

clean:
	@if [ -x $(PY) ]; then $(KAFKA) down || true; fi
	rm -rf $(VENV) .kafka data .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
