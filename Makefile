# cqrs-orders: `make run` starts the whole system, `make test` checks it all.
# Every target uses the virtual environment in .venv (created on demand).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Targets depend on each other in order (venv before services before migrate...).
.NOTPARALLEL:

VENV          := .venv
PY            := $(VENV)/bin/python
STAMP         := $(VENV)/.installed
BOOT_PYTHON   ?= $(shell command -v python3.11 || command -v python3)
PORT          ?= 8000
RUN_SETTINGS  ?= config.settings.local
TEST_SETTINGS := config.settings.test
PYTEST_ARGS   ?=
BENCH_ARGS    ?=
METRICS_DIR   := $(CURDIR)/.run/prometheus
export PORT

MANAGE      := DJANGO_SETTINGS_MODULE=$(RUN_SETTINGS) $(PY) manage.py
TEST_MANAGE := DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(PY) manage.py

# The five processes of `make run`. docker-compose.yml runs the same commands
# (tests/test_compose.py checks that they match). Imports have a worker of their
# own, so that a long import never delays orders.
WEB_CMD                := $(VENV)/bin/python -m config.serve --host 127.0.0.1 --port $(PORT) --workers 2
COMMANDS_WORKER_CMD    := $(VENV)/bin/celery -A config.celery_app worker -Q commands -c 2 -n commands@%h --loglevel INFO
IMPORTS_WORKER_CMD     := $(VENV)/bin/celery -A config.celery_app worker -Q imports,maintenance -c 1 -n imports@%h --loglevel INFO
PROJECTIONS_WORKER_CMD := $(VENV)/bin/celery -A config.celery_app worker -Q projections -c 1 -n projections@%h --loglevel INFO
BEAT_CMD               := $(VENV)/bin/celery -A config.celery_app beat --loglevel INFO --schedule .run/celerybeat-schedule

.PHONY: help venv lock services ensure-services test-services migrate seed run \
        lint types contracts migrations-check test test-fast test-rabbitmq bench

help: ## Show this help
	@echo "Usage: make TARGET   (PORT=$(PORT), RUN_SETTINGS=$(RUN_SETTINGS))"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

# --- Environment ---------------------------------------------------------------

venv: $(STAMP) ## Create .venv and install requirements.lock (again only when it changes)

# The repository goes on the venv's path through a .pth file: there is no build
# step, as pyproject.toml has no build backend.

$(STAMP): requirements.lock
	@if [ ! -x $(PY) ]; then \
		test -n "$(BOOT_PYTHON)" || { echo "python3.11 (or python3) not found"; exit 1; }; \
		echo "Creating $(VENV) with $(BOOT_PYTHON)"; \
		$(BOOT_PYTHON) -m venv $(VENV); \
	fi
	@$(PY) -c 'import sys; sys.version_info[:2] == (3, 11) or print("warning: .venv runs Python %d.%d; the project targets 3.11" % sys.version_info[:2])'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "cqrs_orders.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	@touch $(STAMP)

lock: ## Rewrite requirements.lock from what .venv has installed
	@{ echo "# Pinned versions of every runtime and development dependency (pyproject.toml)."; \
	   echo "# Regenerate with \"make lock\" after changing dependencies in a working .venv."; \
	   $(PY) -m pip freeze --disable-pip-version-check --exclude-editable \
	     | grep -viE '^(cqrs-orders|cqrs_orders)=='; } > requirements.lock.tmp
	@mv requirements.lock.tmp requirements.lock
	@touch $(STAMP)

# --- Services and databases ------------------------------------------------------

# check_services is ops/management/commands/check_services.py (ops: operations tooling).
services: venv ## Check PostgreSQL and Redis; create the databases if missing
	$(MANAGE) check_services --create-databases

ensure-services: ## Start local PostgreSQL/Redis if they are down (used by test)
	scripts/ensure_services.sh

test-services: venv ensure-services
	$(TEST_MANAGE) check_services --create-databases

migrate: services ## Migrate both databases (default and read)
	$(MANAGE) migrate --noinput
	$(MANAGE) migrate --noinput --database read

seed: migrate ## Create the demo users and products (idempotent)
	$(MANAGE) seed_demo

# --- Run -------------------------------------------------------------------------

# Every process of `make run` writes its Prometheus metrics to files in this
# directory, emptied at each start, and the web's /metrics adds them up
# (prometheus-client multiprocess mode; see docs/operations.md).
run: venv services migrate seed ## Run web, both workers and beat in the foreground; Ctrl-C stops all
	@mkdir -p .run
	@rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	exec env DJANGO_SETTINGS_MODULE=$(RUN_SETTINGS) PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) \
		$(PY) scripts/run_all.py \
		"web=$(WEB_CMD)" \
		"commands=$(COMMANDS_WORKER_CMD)" \
		"imports=$(IMPORTS_WORKER_CMD)" \
		"projections=$(PROJECTIONS_WORKER_CMD)" \
		"beat=$(BEAT_CMD)"

# --- Checks ----------------------------------------------------------------------

# What .pre-commit-config.yaml runs before each commit: ruff (with its size and
# complexity rules), the formatting, the types and the import contracts.
lint: venv types contracts ## ruff check, ruff format --check, mypy, lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: venv ## mypy
	$(VENV)/bin/mypy .

contracts: venv ## Import contracts (import-linter)
	$(VENV)/bin/lint-imports

migrations-check: venv ## Fail if a model change has no migration
	$(TEST_MANAGE) makemigrations --check --dry-run

test: venv test-services lint types contracts migrations-check ## Everything: lint, types, contracts, migrations, the whole suite
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-rabbitmq

# The unit tier alone (tests/support/tiers.py): domain rules, pure functions and
# the repository's files; no database, Redis or process is needed or touched.
test-fast: venv ## The unit tests only, in seconds: no PostgreSQL, Redis or worker needed
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(VENV)/bin/pytest -m unit -q $(PYTEST_ARGS)

# --- The broker-sensitive tests again, on RabbitMQ ------------------------------
# The first pass runs on the Redis broker; this one on RabbitMQ, in a virtual host
# of its own per run (created and deleted by tests/conftest.py with rabbitmqctl).
RABBITMQ_TEST_URL ?= amqp://guest:guest@127.0.0.1:5672
BROKER_TESTS := tests/test_smoke_pipeline.py tests/commands_app/test_execution.py \
                tests/commands_app/test_imports.py tests/commands_app/test_import_isolation.py \
                tests/commands_app/test_consumers.py \
                tests/observability/test_metrics.py::test_a_scrape_reports_every_projection_and_queue \
                tests/observability/test_metrics.py::test_the_queue_depth_counts_the_messages_waiting_on_either_broker \
                tests/observability/test_metrics.py::test_metrics_move_while_commands_flow_through_the_real_worker \
                tests/reliability/test_worker_faults.py \
                tests/reliability/test_redis_faults.py::test_a_redis_that_loses_the_queue_mid_burst_loses_no_command \
                tests/reliability/test_broker_faults.py

test-rabbitmq: venv test-services ## The broker-sensitive tests on RabbitMQ (part of test)
	CELERY_BROKER_URL="$(RABBITMQ_TEST_URL)/cqrs-test-$$(hostname -s)-$$$$" \
		DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(VENV)/bin/pytest $(BROKER_TESTS) $(PYTEST_ARGS)

bench: venv ensure-services ## Run the benchmarks (bench/run.py; BENCH_ARGS="--quick", "--full", "--only accept,reads")
	$(PY) bench/run.py $(BENCH_ARGS)
