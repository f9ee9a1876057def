# Two commands do all the set-up (see README.md):
#   make run   venv, install, migrate, import the catalogue, demo login, serve http://127.0.0.1:8000
#   make test  the whole test suite (SQLite unless DATABASE_URL says otherwise)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Debug is off unless asked for; the local set-up (`make run`) asks for it. `DJANGO_DEBUG=0 make run`
# serves with debug off (a secret key is generated into var/secret_key, no demo login is made).
DJANGO_DEBUG ?= 1
export DJANGO_DEBUG

.PHONY: run worker test test-fast lint format install migrate import-catalogue demo-user catalogue-experiments chromium clean benchmarks

$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --no-input

import-catalogue: migrate
	$(PY) manage.py import_ideas ideas/fixtures/ai_safety_ideas.txt --if-empty

demo-user: migrate
	$(PY) manage.py ensure_demo_user --skip-if-debug-off

catalogue-experiments: import-catalogue demo-user
	$(PY) manage.py attach_catalogue_experiments --user demo --if-user-exists

# The web server and one Celery worker (all queues) on the embedded broker; Ctrl-C stops both.
run: catalogue-experiments
	@mkdir -p var
	@$(PY) manage.py collectstatic --no-input -v0  # served by WhiteNoise when debug is off
	@echo "Worker log: var/worker.log"
	@echo "Serving http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) -m celery -A config worker -Q cpu,gpu -c 1 -l info --logfile var/worker.log & worker=$$!; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

# A worker on its own, e.g. on a GPU machine: make worker QUEUES=gpu CONCURRENCY=1
# Each of its CONCURRENCY run processes uses the worker's CPUs // CONCURRENCY torch threads
# (WORKER_TORCH_THREADS overrides; see README "Monitoring").
QUEUES ?= cpu,gpu
CONCURRENCY ?= 1
worker: install
	$(PY) -m celery -A config worker -Q $(QUEUES) -c $(CONCURRENCY) -l info

# Page tests drive Debian's Chromium; install it when it is missing (needs root, as on CI).
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "The page tests need Debian's Chromium: sudo apt-get install chromium chromium-driver"; exit 1; fi; \
	  echo "Installing Debian's chromium for the page tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: install chromium
	$(PY) -m pytest

# While developing: everything but the slow science tests (make test and CI still run them).
test-fast: install chromium
	$(PY) -m pytest -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

# Side-by-side performance scripts; results go to docs/benchmarks.md (needs Redis for dispatch, PostgreSQL for api).
benchmarks: install
	$(PY) benchmarks/dispatch.py
	$(PY) benchmarks/ablation.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/grokking.py
	$(PY) benchmarks/patching.py
	$(PY) benchmarks/eval_batching.py
	$(PY) benchmarks/api.py
