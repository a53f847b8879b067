# Two commands do all the set-up: `make run` (embedded default) and `make test` (PostgreSQL + Redis).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The venv is remade when the lock or the project's own metadata changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)

# The suite runs on the real services; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/comeback
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
TEST_ENV = DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}"

.PHONY: venv node run test test-fast services bench faults lint check format lock check-deploy clean

# Exact versions and hashes from the lock files; pyproject.toml keeps the ranges (see `lock`).
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# Test-only tools from npm (axe-core for the browser tests), exactly as package-lock.json says.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node: $(NODE_STAMP)

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@scripts/run.sh

services:
	@$(TEST_ENV) scripts/ensure-services.sh

# The suite runs in TEST_WORKERS processes (pytest-xdist; `auto` is one per core, 1 runs it in
# this process), a test file to each at a time: a file's tests share their servers and fixtures.
TEST_WORKERS ?= auto
XDIST = $(if $(filter 1,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)

# The full suite, as CI runs it.
test: venv node services
	$(TEST_ENV) $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

# Everything but the tests marked slow (those that boot servers and workers).
test-fast: venv node services
	$(TEST_ENV) $(BIN)/pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

# The benchmark: SCALE=full (1M customers / 10M episodes, the reference), small or tiny. It
# uses its own database per scale (comeback_bench_<scale>), generated once and reused.
SCALE ?= full
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/comeback_bench_{scale}

bench: venv
	@DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) scripts/ensure-services.sh
	BENCH_DATABASE_URL="$(BENCH_DATABASE_URL)" $(BIN)/python -m bench --scale $(SCALE) $(BENCH_ARGS)

# Fault injection (README, "Faults"): Redis killed and hung, database backends terminated,
# gunicorn and Celery workers killed, under a till's load; one table per scenario, exit 1 on any
# loss, duplicate, 500 or wrong case. Its own database and a Redis of its own on a private port.
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/comeback_faults

faults: venv
	@DATABASE_URL=$(FAULTS_DATABASE_URL) CELERY_BROKER_URL=memory:// scripts/ensure-services.sh
	FAULTS_DATABASE_URL="$(FAULTS_DATABASE_URL)" $(BIN)/python -m faults $(FAULTS_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# What CI checks besides the suite: lint, and models that their migrations describe.
check: lint
	$(BIN)/python manage.py makemigrations --check --dry-run

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate both lock files from pyproject.toml's ranges, from PyPI alone whatever local indexes
# pip is configured with. Pins already in a lock are kept; LOCK_ARGS=--upgrade moves every pin to
# the newest version the ranges allow.
PIP_COMPILE = env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--index-url https://pypi.org/simple --no-emit-index-url $(LOCK_ARGS)

lock: venv
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev -o requirements-dev.lock pyproject.toml

check-deploy: venv
	DEBUG=false SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=example.com \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var
