#!/bin/sh
# The image's start command: migrate the database, then exec the process of a role.
#
#   web     gunicorn, WEB_CONCURRENCY workers of P2PDASH_THREADS threads, on
#           P2PDASH_HOST:P2PDASH_PORT, behind a buffering proxy (deploy/nginx.conf):
#           gunicorn's threads read requests themselves. X-Forwarded-* are the app's
#           to trust (P2PDASH_TRUSTED_PROXIES), not gunicorn's.
#   ingest  ingestion in `p2pdash run` (waitress, one process) with INGEST_ENABLED=true:
#           every replica campaigns, one wins the database's advisory lock; it serves
#           /healthz and /metrics (with the ingest counters) on P2PDASH_PORT, not behind
#           the proxy
#   ingest-only  `p2pdash ingest`: the same without any HTTP server
#   migrate only the migration, then exit
#   other   run as given (e.g. `p2pdash users create ...`), without migrating
#
# Migrations are serialised by an advisory lock (db/migrate.py), so replicas starting
# together are safe. exec hands PID 1 to the server: SIGTERM from the engine reaches it.
set -eu

migrate() {
    if [ -z "${DATABASE_URL:-}" ]; then
        echo "p2pdash-entrypoint: DATABASE_URL is required in a container (no embedded" \
             "database here)" >&2
        exit 2
    fi
    case "${P2PDASH_AUTO_MIGRATE:-true}" in
        0|false|False|FALSE|no|off) ;;
        *) p2pdash db upgrade ;;
    esac
    # Done once here; the server's processes need not try again.
    export P2PDASH_AUTO_MIGRATE=false
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi
case "$role" in
    web)
        migrate
        # gunicorn's hooks empty the metrics directory at start and mark dead workers.
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/p2pdash-metrics}"
        # gunicorn's control socket (gunicornc) goes here, not under the read-only $HOME.
        export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
        exec gunicorn -c python:app.gunicorn_conf \
            --bind "${P2PDASH_HOST:-0.0.0.0}:${P2PDASH_PORT:-8050}" \
            --workers "${WEB_CONCURRENCY:-4}" --threads "${P2PDASH_THREADS:-8}" \
            --worker-class gthread --worker-tmp-dir "${GUNICORN_TMP_DIR:-/dev/shm}" \
            --timeout "${GUNICORN_TIMEOUT:-120}" --graceful-timeout 20 \
            --access-logfile - \
            "$@" wsgi:server
        ;;
    ingest)
        migrate
        export INGEST_ENABLED=true
        exec p2pdash run "$@"
        ;;
    ingest-only)
        migrate
        exec p2pdash ingest "$@"
        ;;
    migrate)
        P2PDASH_AUTO_MIGRATE=true migrate
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
