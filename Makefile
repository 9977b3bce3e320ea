# GridMart: two commands on a fresh machine.
#   make up    install what is missing, start the devnet, deploy, serve the marketplace
#   make test  install what is missing and run the whole suite against real parts
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test deps down bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	# `npm install` (not `npm ci`): js-ipfs has an optional dependency fetched from a GitHub
	# tarball, which is never in the lock file offline, and `npm ci` refuses that.
	npm install --no-audit --no-fund
	@touch $@

.system-deps: scripts/install_system_deps.sh
	scripts/install_system_deps.sh
	@touch $@

deps: $(VENV)/.installed node_modules/.installed .system-deps

up: deps
	$(BIN)/gridmart up

down:
	-$(BIN)/gridmart chain down

test: deps
	$(BIN)/pytest

bench: deps
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .gridmart test-artifacts .pytest_cache
