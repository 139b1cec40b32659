#!/usr/bin/env bash
# Run a command with throwaway PostgreSQL and Redis servers on loopback, then stop them.
# Usage: scripts/with-services.sh <command...>   (exports DATABASE_URL and REDIS_URL to it)
set -euo pipefail

tmp=$(mktemp -d /tmp/gtm-ops-services.XXXXXX)
chmod 755 "$tmp"
pg_bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
redis_port=$(free_port)

# initdb and postgres refuse to run as root: run them as the postgres system user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$tmp"

cleanup() {
  status=$?
  as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT INT TERM

as_pg "$pg_bin/initdb" -D "$tmp/pg" -U postgres --auth=trust -E UTF8 >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log"; exit 1; }
as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg.log" -w -t 30 \
  -o "-h 127.0.0.1 -p $pg_port -k $tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
  || { cat "$tmp/pg.log"; exit 1; }
psql -h 127.0.0.1 -p "$pg_port" -U postgres -q -c "CREATE ROLE gtm LOGIN CREATEDB PASSWORD 'gtm'" \
  -c "CREATE DATABASE gtm OWNER gtm" >/dev/null

redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$tmp" --logfile "$tmp/redis.log" >/dev/null

export DATABASE_URL="postgres://gtm:gtm@127.0.0.1:$pg_port/gtm"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
"$@"
