#!/usr/bin/env bash
# `make run`: the web app, one Celery worker on kombu's filesystem broker (no server to install), and two
# CRM sandboxes the demo clients are connected to (Acme: Salesforce-shaped, Globex: HubSpot-shaped).
# Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-filesystem://}
export CRM_ALLOW_HTTP=${CRM_ALLOW_HTTP:-true}  # the sandboxes speak plain http on loopback
SF_PORT=${SF_PORT:-8701}
HS_PORT=${HS_PORT:-8702}
# the portal's "Connect HubSpot" goes to the HubSpot sandbox's consent page, never to app.hubspot.com
export CRM_OAUTH_HUBSPOT_APP_URL=${CRM_OAUTH_HUBSPOT_APP_URL:-http://127.0.0.1:$HS_PORT}
export CRM_OAUTH_HUBSPOT_API_URL=${CRM_OAUTH_HUBSPOT_API_URL:-http://127.0.0.1:$HS_PORT}
mkdir -p var/broker/processed var/broker/control

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
.venv/bin/python manage.py crm_sandbox --kind salesforce --port "$SF_PORT" --profile demo >var/sandbox-salesforce.log 2>&1 &
pids+=($!)
.venv/bin/python manage.py crm_sandbox --kind hubspot --port "$HS_PORT" --profile demo >var/sandbox-hubspot.log 2>&1 &
pids+=($!)
.venv/bin/celery -A gtm_ops worker --pool=solo --loglevel=WARNING >var/worker.log 2>&1 &
pids+=($!)

# Wait (20 s at most) until both sandboxes answer.
.venv/bin/python - "$SF_PORT" "$HS_PORT" <<'PY'
import sys, time, urllib.request
for port in sys.argv[1:]:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/__sandbox__/org", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
PY
.venv/bin/python manage.py connect_demo_crm --salesforce "http://127.0.0.1:$SF_PORT" --hubspot "http://127.0.0.1:$HS_PORT"
echo "Celery worker started (log: var/worker.log); CRM sandboxes on ports $SF_PORT and $HS_PORT"
.venv/bin/python manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
