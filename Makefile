# Bourse: `make` lists the targets. Everything runs in the uv-managed venv (.venv),
# from the lock file, with the system's Python (uv never downloads one).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export UV_PYTHON_DOWNLOADS := never
# Where `pip install --user uv` puts uv, in case it is not on PATH yet.
export PATH := $(HOME)/.local/bin:$(PATH)

UV_RUN := uv run --frozen
# The tests and benchmarks drive real FIX sessions: they need the `fix` extra (quickfix), which
# `scripts/ensure-tools.sh --fix` installs (compiled once, then from uv's cache). Naming the
# extra here too keeps every run's environment the one the tests need.
UV_RUN_FIX := $(UV_RUN) --extra fix
ENSURE_TOOLS := scripts/ensure-tools.sh
DEMO_HOME := .bourse/demo

.PHONY: help install demo test test-fast bench lint crash clean

help: ## List the targets
	@echo "Usage: make <target>"
	@if [ -t 1 ]; then on=$$'\033[36m'; off=$$'\033[0m'; else on=; off=; fi; \
		grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) \
		| awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "} {printf "  %s%-10s%s %s\n", on, $$1, off, $$2}'

install: ## Install uv, the project venv, redis-server and PostgreSQL (apt-get when root)
	@$(ENSURE_TOOLS)

demo: ## Simulate 20 accounts and 2000 orders, verify ledger and audit log, replay ticks into the lake (rejects by reason), build the day's reports and the tax year
	@$(ENSURE_TOOLS) --no-servers
	rm -rf $(DEMO_HOME)
	$(UV_RUN) bourse simulate --home $(DEMO_HOME) --accounts 20 --orders 2000 --seed 7
	$(UV_RUN) bourse ledger verify --home $(DEMO_HOME)
	$(UV_RUN) bourse audit verify --home $(DEMO_HOME)
	$(UV_RUN) bourse pipelines ticks --home $(DEMO_HOME) \
		--source tests/data/market/eurusd-quotes-histdata-2020-01.csv --format histdata
	$(UV_RUN) bourse pipelines ticks --home $(DEMO_HOME) \
		--source synthetic --symbols EURUSD,BTCUSDT,US500 --ticks 200000 --seed 7 --inject 0.01
	$(UV_RUN) bourse reports run --home $(DEMO_HOME) --date 2026-01-05
	$(UV_RUN) bourse reports tax --home $(DEMO_HOME) --year 2026
	@echo "Next: the whole platform (Redis, OMS, ticks, positions, API and dashboard) on a home of its own:"
	@echo "  $(UV_RUN) bourse up --home .bourse/up     (Ctrl-C stops it)"

test: ## Run the whole test suite (throwaway PostgreSQL, Redis and QuickFIX counterparties; installs the fix extra)
	@$(ENSURE_TOOLS) --fix
	$(UV_RUN_FIX) pytest -q

test-fast: ## Run the tests not marked slow
	@$(ENSURE_TOOLS) --fix
	$(UV_RUN_FIX) pytest -q -m "not slow"

bench: ## Run the benchmarks; results as JSON in benchmarks/results/
	@$(ENSURE_TOOLS) --fix
	$(UV_RUN_FIX) python -m benchmarks

lint: ## ruff check, ruff format --check, mypy
	@$(ENSURE_TOOLS) --no-servers
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy

crash: ## Run 100 crash trials (tests/trading/crash_trials.py)
	@$(ENSURE_TOOLS)
	$(UV_RUN) python -m tests.trading.crash_trials --trials 100

clean: ## Remove demo data and tool caches (keeps .venv and benchmark results)
	rm -rf .bourse .pytest_cache .mypy_cache .ruff_cache .hypothesis dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	find . -path ./.venv -prune -o -type d -name '*.egg-info' -prune -exec rm -rf {} +
