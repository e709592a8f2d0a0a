#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL cluster for the collector tests and benchmark.
# Idempotent: installs Debian's postgresql if missing, initialises a cluster in $TRACEWIRE_PG_DATA,
# listens on 127.0.0.1:$TRACEWIRE_PG_PORT only, creates role + database `tracewire`.
# Last line of stdout: `export TRACEWIRE_TEST_PG_DSN=...` (so `eval "$(.ci/pg-start.sh | tail -1)"` works).
set -euo pipefail

PORT="${TRACEWIRE_PG_PORT:-55432}"
DATA="${TRACEWIRE_PG_DATA:-/tmp/tracewire-pg-$PORT}"
DSN="postgresql://tracewire:tracewire@127.0.0.1:${PORT}/tracewire"

log() { echo "pg-start: $*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    log "installing postgresql (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

# The server refuses to run as root: run it as `postgres` when we are root, else as ourselves.
if [ "$(id -u)" -eq 0 ]; then
    PGUSER_OS=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    PGUSER_OS="$(id -un)"
    as_pg() { "$@"; }
fi

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    if [ ! -s "$DATA/PG_VERSION" ]; then
        log "initdb in $DATA"
        mkdir -p "$DATA"
        chown "$PGUSER_OS" "$DATA"
        chmod 700 "$DATA"
        as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    log "starting on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DATA -c max_connections=200" \
        start >&2
fi

psql_su() { as_pg "$BIN/psql" -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_su -c "SELECT 1 FROM pg_roles WHERE rolname = 'tracewire'")" != "1" ]; then
    psql_su -c "CREATE ROLE tracewire LOGIN CREATEDB PASSWORD 'tracewire'" >&2
fi
# The tests drop their databases WITH (FORCE); an autovacuum worker still in one of them can only
# be ended by a member of pg_signal_backend.
psql_su -c "GRANT pg_signal_backend TO tracewire" >&2
if [ "$(psql_su -c "SELECT 1 FROM pg_database WHERE datname = 'tracewire'")" != "1" ]; then
    psql_su -c "CREATE DATABASE tracewire OWNER tracewire" >&2
fi
log "ready: $DSN"
echo "export TRACEWIRE_TEST_PG_DSN=$DSN"
