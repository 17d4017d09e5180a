# Two commands for a newcomer: `make run` serves on SQLite in ./var, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rolebook serve

# Debian's Chromium and chromedriver, for the browser test (tests/e2e/test_accept_page.py).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo 'make browser: not root; run: sudo apt-get install chromium chromium-driver' >&2; \
	  exit 1; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo 'make browser: no apt-get here; install Chromium and chromedriver as' \
	       '/usr/bin/chromium and /usr/bin/chromedriver' >&2; \
	  exit 1; \
	fi; \
	echo 'make browser: installing chromium chromium-driver (apt-get)'; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

# `make test` never installs system packages: without Chromium the browser test skips, saying
# why. `make browser` (or CI's .ci/run) installs it explicitly.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m bench
