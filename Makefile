# Everything a user runs goes through here. uv is bootstrapped into .tools/ when it is not on PATH,
# so a fresh machine needs only Python 3.11 (the system Python is never pip-installed into).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV_BIN := $(CURDIR)/.venv/bin
# dbt must be on PATH: under `dagster dev`, DbtProject.prepare_if_dev() runs a bare `dbt`.
export PATH := $(VENV_BIN):$(PATH)

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DUCKDB_DATABASE ?= $(CURDIR)/data/analytics.duckdb
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
export OPENBLAS_NUM_THREADS ?= 1
export PYTHONWARNINGS ?= ignore

.PHONY: help install manifest run dev test lint bench clean

help:
	@echo "make run    install, then run the whole pipeline on the demo data (kept for make dev)"
	@echo "make test   install, then run the test suite"
	@echo "make dev    open the Dagster UI on the runs under .dagster_home"
	@echo "make bench  time the pipeline at scale (SCALE persons, DAYS days, ACTIVITY)"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.synced $(DAGSTER_HOME)/dagster.yaml

# Dagster's instance storage: PostgreSQL (dagster.postgres.yaml) when DAGSTER_PG_URL is set, else
# SQLite under DAGSTER_HOME (dagster.yaml). Checked on every install (FORCE) so that setting or
# unsetting the variable switches it; the file is rewritten only when the choice changed. The
# variable is tested in the shell, so a URL with `$` or `#` in its password is never expanded.
# dagster-postgres needs psycopg2 (postgresql+psycopg2://): with SQLAlchemy 2.1 a plain postgresql://
# URL means psycopg 3, which cannot send Dagster's `NOTIFY run_events, <id>` and fails every run.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml dagster.postgres.yaml FORCE
	@mkdir -p "$(DAGSTER_HOME)"
	@if [ -n "$${DAGSTER_PG_URL:-}" ]; then \
	  case "$$DAGSTER_PG_URL" in postgresql+psycopg2://*) ;; \
	    *) echo "DAGSTER_PG_URL must start with postgresql+psycopg2:// (see docs/production.md)" >&2; exit 1;; esac; \
	  src=dagster.postgres.yaml; else src=dagster.yaml; fi; \
	cmp -s "$$src" "$@" || { cp "$$src" "$@" && echo "Dagster instance: $@ from $$src"; }

FORCE:

manifest: install
	$(VENV_BIN)/python -m orchestration.transform.parse

run: manifest
	$(VENV_BIN)/python -m orchestration.run

# Schedules start stopped under `make dev` unless turned on: `make dev ANALYTICS_SCHEDULES=on`.
dev: manifest
	ANALYTICS_SCHEDULES=$(or $(ANALYTICS_SCHEDULES),off) $(VENV_BIN)/dagster dev -w workspace.yaml

# Two workers (this project's machines have two cores), one test file per worker at a time so a
# module's fixtures are built once; TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: manifest
	$(VENV_BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Not part of the tests: generates SCALE persons x DAYS days of demo data (about 40 events per
# person in 30 days; ACTIVITY=1 for the demo's own 5.7), runs the real job on it and prints wall
# time and peak memory per stage (JSON under bench/results/). See bench/README.md.
# BENCH_ARGS passes more options, e.g. BENCH_ARGS="--keep /tmp/bench --no-daily".
SCALE ?= 1000000
DAYS ?= 30
bench: manifest
	$(VENV_BIN)/python bench/run_bench.py --scale $(SCALE) --days $(DAYS) \
	  $(if $(ACTIVITY),--activity $(ACTIVITY)) $(BENCH_ARGS)

lint: install
	$(VENV_BIN)/ruff check orchestration ml tests

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
