# Ops Console. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install everything (idempotent)

run: install ## Start the console, a Celery worker and beat (SQLite + filesystem broker under var/ by default)
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: install ## Run the whole test suite (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff lint + format check + import contracts (import-linter, pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install ## mypy with django-stubs
	$(VENV)/bin/mypy .

checks: install ## makemigrations --check and check --deploy on production settings
	$(PY) manage.py makemigrations --check --dry-run
	OPS_ENVIRONMENT=production DEBUG=0 SECRET_KEY=ci-check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	  ALLOWED_HOSTS=ops.example.com DATABASE_URL=$${DATABASE_URL:-postgres://ops@db/ops} \
	  REDIS_URL=$${REDIS_URL:-redis://redis:6379/0} \
	  OPS_BACKUP_ENCRYPTION_KEY=ci-check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	  $(PY) manage.py check --deploy --fail-level WARNING

bench: install ## Run the benchmarks in bench/ (comparisons with peers, as ratios)
	$(PY) bench/run_all.py

clean: ## Remove var/ (database, broker, backups of the embedded default)
	rm -rf var/

.PHONY: help install run test lint format typecheck checks bench clean
