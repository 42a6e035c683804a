# The two commands of the README: `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install system-deps lint infra-lint package-check test version-venvs versions demo bench clean

$(VENV)/.installed: pyproject.toml $(wildcard dxtrack/*.c dxtrack/*.h)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed system-deps

# rsyslog is the real syslog daemon the Papertrail tests send to (on loopback); Chromium and
# its driver are the real browser the dashboard tests drive (headless).
system-deps:
	@command -v rsyslogd >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing rsyslog, chromium and chromium-driver (Debian packages) for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    rsyslog rsyslog-openssl chromium chromium-driver >/dev/null; }

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(MAKE) infra-lint

# The sdist and the wheel built from it, checked as a user meets them: twine's checks, their
# contents, and the wheel installed into a fresh venv running a job and the command.
package-check: install
	rm -rf build/package
	$(PY) -m build --outdir build/package . >/dev/null
	$(PY) -m twine check --strict build/package/*
	$(PY) .ci/check_package.py build/package

# checkov over the CloudFormation template, in a venv of its own (its dependencies are many and
# pinned); --skip-download keeps it offline. A skipped check carries its reason in the template.
CHECKOV := .venvs/checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venvs/checkov
	.venvs/checkov/bin/pip install -q 'checkov>=3.2,<4'

infra-lint: $(CHECKOV)
	$(CHECKOV) -f infra/dxtrack.yaml --framework cloudformation --skip-download --quiet --compact

# The package, the checks, then the tests twice: with the compiled fast path of metric()/error()
# (as installed), then without it: all but the files about delivery (outages, process deaths,
# compression), the command, the dashboard and the cloud side, which the two paths share; beside
# that second pass, the capture and record tests on the other Pythons. What only downloads and
# compiles runs meanwhile: checkov's venv from the start, the other Pythons' venvs (at a low
# priority) once the package is built, as their editable installs write in the source tree too.
SHARED_BY_BOTH_PATHS := tests/test_lifecycle.py tests/test_delivery_adversarial.py tests/test_spool_compression.py \
	tests/test_firehose_delivery.py tests/test_compression.py tests/test_cli_aws.py \
	tests/test_dashboard.py tests/test_infra.py tests/test_infra_options.py \
	tests/test_snowflake.py
test:
	@mkdir -p .venvs; \
	$(MAKE) --no-print-directory $(CHECKOV) > .venvs/checkov.log 2>&1 & checkov=$$!; \
	$(MAKE) --no-print-directory install package-check || { wait $$checkov; exit 1; }; \
	nice -n 10 $(MAKE) --no-print-directory version-venvs > .venvs/install.log 2>&1 & installs=$$!; \
	wait $$checkov || { cat .venvs/checkov.log; wait $$installs; exit 1; }; \
	{ $(MAKE) --no-print-directory lint && $(PY) -m pytest; } || { wait $$installs; exit 1; }; \
	wait $$installs || { cat .venvs/install.log; exit 1; }; \
	$(MAKE) --no-print-directory versions > .venvs/versions.log 2>&1 & versions=$$!; \
	DXTRACK_PURE_PYTHON=1 $(PY) -m pytest -q $(addprefix --deselect ,$(SHARED_BY_BOTH_PATHS)); \
	pure=$$?; wait $$versions; other=$$?; cat .venvs/versions.log; \
	test $$pure -eq 0 -a $$other -eq 0

# The capture and record tests (tracebacks identical to Python's own, among them) on each other
# CPython that pyenv has, compiled, and the traceback tests in pure Python too. Each version
# gets its own venv with what those tests need (the test-core extra); an editable install
# builds its own extension modules beside 3.11's.
VERSIONS ?= 3.10 3.12 3.13
VERSION_TESTS := tests/test_traceback_fidelity.py tests/test_records.py \
	tests/test_compiled_builder.py tests/test_hotpath.py tests/test_event_buffer.py \
	tests/test_jsonsafe.py \
	tests/test_config.py tests/test_shaping.py tests/test_unhandled.py tests/test_helpers.py \
	tests/test_logging_capture.py

.venvs/%/.installed: pyproject.toml $(wildcard dxtrack/*.c dxtrack/*.h)
	@root=$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv"); \
	python=$$(ls -d "$$root"/versions/$*.* 2>/dev/null | sort -V | tail -n 1)/bin/python; \
	if [ ! -x "$$python" ]; then echo "CPython $* is not in $$root/versions"; exit 1; fi; \
	echo "== installing for CPython $* ($$python)"; \
	[ -x .venvs/$*/bin/python ] || $$python -m venv .venvs/$*; \
	.venvs/$*/bin/python -m pip install -q --upgrade pip && \
	.venvs/$*/bin/python -m pip install -q -e '.[test-core]' && touch $@

version-venvs: $(foreach v,$(VERSIONS),.venvs/$(v)/.installed)

versions: version-venvs
	@set -e; for v in $(VERSIONS); do \
	  echo "== CPython $$v"; \
	  .venvs/$$v/bin/python -c 'import dxtrack; assert dxtrack.compiled, "not compiled"'; \
	  .venvs/$$v/bin/python -m pytest -q -p no:cacheprovider $(VERSION_TESTS); \
	  DXTRACK_PURE_PYTHON=1 .venvs/$$v/bin/python -m pytest -q -p no:cacheprovider \
	    tests/test_traceback_fidelity.py tests/test_records.py; \
	done

# The demo has a venv of its own with only what it uses: dxtrack, its command and moto's server.
DEMO_VENV ?= .venvs/demo
$(DEMO_VENV)/.installed: pyproject.toml $(wildcard dxtrack/*.c dxtrack/*.h)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -q -e '.[demo]'
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python examples/demo.py

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .venvs .dxtrack_output demo-output build .pytest_cache .mypy_cache .ruff_cache
