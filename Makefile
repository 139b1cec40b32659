# The two commands: `make run` (embedded default) and `make test` (real services on loopback).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# apt needs root: through sudo when make runs as another user.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := postgresql redis-server poppler-utils libharfbuzz-subset0 chromium chromium-driver
HOST ?= 127.0.0.1
PORT ?= 8000
# Links in emails and the ones `make run` prints point where the server listens.
SITE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)

.PHONY: run test venv system-deps lint typecheck lock migrate demo worker clean

venv: $(BIN)/.installed

# The system Python is never touched: the venv comes from uv when it is on PATH, else from `python3 -m venv`,
# and uv (3 s for the whole stack against 25-40 s for pip) is used from PATH or installed inside the venv.
$(BIN)/.installed: requirements.lock
	@test -x $(BIN)/python || { command -v uv >/dev/null && uv venv --quiet --seed --python $(PYTHON) $(VENV); } \
	  || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || command -v uv >/dev/null || $(BIN)/python -m pip install --quiet uv
	$$(test -x $(BIN)/uv && echo $(BIN)/uv || echo uv) pip install --quiet --python $(BIN)/python -r requirements.lock
	@touch $@

# Install the system packages the tests need, only those that are missing.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

migrate: venv
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput

demo run: export SITE_URL := $(SITE_URL)

demo: migrate
	$(BIN)/python manage.py load_playbooks
	$(BIN)/python manage.py seed_demo

run: demo
	HOST=$(HOST) PORT=$(PORT) scripts/run-dev.sh

# Both locks from pyproject.toml: the tested one (with the dev extra) and the production image's, same pins.
lock:
	uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11
	uv pip compile pyproject.toml -c requirements.lock -o requirements-prod.lock --python-version 3.11

lint: venv
	$(BIN)/ruff check .

# Types of every app (pyproject.toml [tool.mypy] says which modules are not yet checked, and why).
typecheck: venv
	$(BIN)/mypy

# Every test, in two shards at once, each on its own throwaway PostgreSQL and Redis (scripts/test-shards.sh).
test: venv system-deps typecheck
	$(BIN)/ruff check .
	scripts/with-services.sh $(BIN)/python manage.py makemigrations --check --dry-run
	scripts/test-shards.sh $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles test-artifacts .mypy_cache
