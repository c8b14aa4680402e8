# Errand: `make run` serves on http://127.0.0.1:3000, `make test` runs the suite.
# Works on a fresh Debian machine with only python3 and pip: uv is installed if missing,
# and uses the machine's Python (never a downloaded one).
#
# One environment for everything: `uv sync` installs the dev dependency group (pytest,
# import-linter) by default, and `make run` uses the same .venv. A separate --no-dev
# environment for running would only cost a second install.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else the one pip installs (`python3 -m uv` works wherever pip put the script).
UV := $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
export UV_PYTHON_DOWNLOADS := never
# Install compiled bytecode: where Python may not write it (PYTHONDONTWRITEBYTECODE, a read-only
# venv) every start would otherwise compile the dependencies anew; `errand mcp`, started by a
# desktop client for each session, answers in about 1 s instead of 3-5 s.
export UV_COMPILE_BYTECODE := 1

.PHONY: help venv chromium run test lint bench clean

help:
	@echo "make run    install, migrate the database, serve on port 3000 (PORT=N or ERRAND_PORT=N for another)"
	@echo "make test   install, check import layers, run pytest (PYTEST_ARGS=... to pass options)"
	@echo "make lint   check import layers only"
	@echo "make bench  measure the hot path with wrk (Debian's wrk package); PG too with ERRAND_BENCH_POSTGRES_URL"
	@echo "make clean  remove caches (keeps .venv and var/)"

venv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet uv
	$(UV) sync --frozen

# The browser providers drive Debian's Chromium (never a downloaded browser). Installed when
# missing and we are root; otherwise this says what to install. Never fails the run: without a
# browser the planner skips browser providers (provider_fallback, reason browser_unavailable).
BROWSER := $(or $(ERRAND_BROWSER_PATH),/usr/bin/chromium)

chromium:
	@if [ -x "$(BROWSER)" ]; then :; \
	elif [ "$(BROWSER)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser providers (apt-get install -y chromium)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
			|| echo "Could not install chromium: browser providers will be skipped (browser_unavailable)."; \
	else \
		echo "No browser at $(BROWSER): browser providers will be skipped (browser_unavailable)."; \
		echo "To enable them: sudo apt-get update && sudo apt-get install -y chromium"; \
		echo "(or point ERRAND_BROWSER_PATH at an installed Chromium)."; \
	fi

# The port: `make run PORT=3100`, or ERRAND_PORT from the environment (`errand serve` reads it), else 3000.
run: venv chromium
	.venv/bin/errand migrate
	.venv/bin/errand serve $(if $(PORT),--port $(PORT))

lint: venv
	.venv/bin/lint-imports

test: venv chromium
	.venv/bin/lint-imports
	.venv/bin/pytest $(PYTEST_ARGS)

# wrk comes from Debian's `wrk` package (apt-get install wrk); bench/book.py says so when it is missing.
bench: venv
	.venv/bin/python bench/book.py $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .import_linter_cache build dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
