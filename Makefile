# The two commands: `make demo` runs the platform with demo data on embedded defaults
# (SQLite, in-process tasks); `make test` runs the tests (on PostgreSQL and Redis when they
# answer on their standard local ports, else on SQLite with those tests skipped and counted).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/scf
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck web worker beat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL sh -c '\
	  $(BIN)/python manage.py migrate --noinput && \
	  $(BIN)/python manage.py collectstatic --noinput --verbosity 0 && \
	  $(BIN)/python manage.py seed_demo --out demo.json --if-empty && \
	  $(BIN)/python manage.py demo_logins demo.json && \
	  $(BIN)/python manage.py runserver 127.0.0.1:8000'

test: install
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; \
	  then export DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}"; echo "tests on PostgreSQL"; \
	  else echo "PostgreSQL not answering on 127.0.0.1:5432: its tests will be skipped"; fi; \
	if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null; \
	  then export REDIS_URL="$${REDIS_URL:-$(REDIS_TEST_URL)}"; echo "tests on Redis"; \
	  else echo "Redis not answering on 127.0.0.1:6379: its tests will be skipped"; fi; \
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: install
	$(BIN)/mypy scf orders lending integrations

# Production-like processes (set DATABASE_URL, CELERY_BROKER_URL, REDIS_URL first).
web: install
	$(BIN)/gunicorn scf.wsgi:application --bind 127.0.0.1:8000 --workers $${WEB_CONCURRENCY:-3}

worker: install
	$(BIN)/celery -A scf worker --loglevel INFO

beat: install
	$(BIN)/celery -A scf beat --loglevel INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles demo.json
