# Two commands for a newcomer: `make run` serves on SQLite in ./var, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench browser browser-or-skip

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

# `make test` tries `make browser` and never fails on it: the browser test skips, saying why.
browser-or-skip:
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) browser || \
	  echo 'make test: no Chromium, continuing; the browser test will be skipped' >&2

test: $(STAMP) browser-or-skip
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m bench
