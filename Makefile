# The two commands of the README: `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install system-deps lint test demo bench clean

$(VENV)/.installed: pyproject.toml dxtrack/_hotpath.c dxtrack/_build.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed system-deps

# rsyslog is the real syslog daemon the Papertrail tests send to (on loopback).
system-deps:
	@command -v rsyslogd >/dev/null 2>&1 || { \
	  echo "installing rsyslog (Debian package) for the Papertrail tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    rsyslog rsyslog-openssl >/dev/null; }

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Twice: with the compiled fast path of metric()/error() (as installed), then without it.
test: lint
	$(PY) -m pytest
	DXTRACK_PURE_PYTHON=1 $(PY) -m pytest -q

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .dxtrack_output .pytest_cache .mypy_cache .ruff_cache
