# GridMart: two commands on a fresh machine.
#   make up    install what is missing, start the devnet, deploy, serve the marketplace
#              (make up PORT=8080 CHAIN_PORT=8546 for other ports)
#   make test  install what is missing and run the whole suite against real parts
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
CHAIN_PORT ?= $(or $(GRIDMART_DEVNET_PORT),8545)

.PHONY: up test deps test-deps down bench clean

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

.system-deps-run: scripts/install_system_deps.sh
	scripts/install_system_deps.sh run
	@touch $@

.system-deps-test: scripts/install_system_deps.sh
	scripts/install_system_deps.sh test
	@touch $@

# what `make up` needs; the tests and benches also need Chromium, PostgreSQL and wrk
deps: .system-deps-run $(VENV)/.installed node_modules/.installed

test-deps: deps .system-deps-test

up: deps
	GRIDMART_DEVNET_PORT=$(CHAIN_PORT) $(BIN)/gridmart up --port $(PORT)

down:
	-$(BIN)/gridmart chain down

# the whole suite on Hardhat, then the chain and market tests again on anvil (`make up`'s devnet)
test: test-deps
	$(BIN)/pytest
	GRIDMART_DEVNET=anvil $(BIN)/pytest tests/chain tests/market

bench: test-deps
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .gridmart test-artifacts .pytest_cache
