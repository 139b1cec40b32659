# The two commands: `make run` (embedded default) and `make test` (real services on loopback).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := postgresql redis-server poppler-utils libharfbuzz-subset0 chromium chromium-driver
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv system-deps lint migrate demo worker clean

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.lock
	@command -v uv >/dev/null || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || uv venv --quiet --python $(PYTHON) $(VENV)
	uv pip install --quiet --python $(BIN)/python -r requirements.lock
	@touch $@

# Install the system packages the tests need, only those that are missing.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

migrate: venv
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_playbooks
	$(BIN)/python manage.py seed_demo

run: demo
	HOST=$(HOST) PORT=$(PORT) scripts/run-dev.sh

lint: venv
	$(BIN)/ruff check .

test: venv system-deps
	scripts/with-services.sh bash -c '\
	  $(BIN)/ruff check . && \
	  $(BIN)/python manage.py makemigrations --check --dry-run && \
	  $(BIN)/python -m pytest $(PYTEST_ARGS)'

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
