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

.PHONY: help venv run test lint clean

help:
	@echo "make run    install, migrate the database, serve on port 3000"
	@echo "make test   install, check import layers, run pytest (PYTEST_ARGS=... to pass options)"
	@echo "make lint   check import layers only"
	@echo "make clean  remove caches (keeps .venv and var/)"

venv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet uv
	$(UV) sync --frozen

run: venv
	.venv/bin/errand migrate
	.venv/bin/errand serve

lint: venv
	.venv/bin/lint-imports

test: venv
	.venv/bin/lint-imports
	.venv/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .pytest_cache .import_linter_cache build dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
