#!/usr/bin/env bash
# `make run`: the web app plus one Celery worker on kombu's filesystem broker, so long work runs in the
# background with progress, as in production, without installing a server. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-filesystem://}
mkdir -p var/broker/processed var/broker/control
.venv/bin/celery -A gtm_ops worker --pool=solo --loglevel=WARNING >var/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "Celery worker started (log: var/worker.log)"
.venv/bin/python manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
