# syntax=docker/dockerfile:1
# p2pdash: one image for the web service (gunicorn) and ingestion (`p2pdash run` with
# INGEST_ENABLED=true).
# Needs DATABASE_URL (TimescaleDB) and SECRET_KEY; REDIS_URL when there are several
# processes. deploy/compose.yaml runs the whole stack; deploy/entrypoint.sh is the start
# command: migrate (serialised by an advisory lock), then exec the server.

# -- builder: a virtualenv with every dependency, compiled here if a wheel is missing ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1

# Every dependency has wheels for CPython 3.11 on amd64 today; the compiler is here so a
# platform or release without one still builds, and it never reaches the final stage.
# Debian's package versions change with every point release of the base image, so they
# are not pinned (the base image's tag pins the distribution).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The source lives at the same path in both stages: the install is editable, so the
# top-level assets/ folder stays beside the code that serves it (app/dashboard.py).
WORKDIR /srv/p2pdash
COPY pyproject.toml README.md wsgi.py ./
COPY app app
COPY callbacks callbacks
COPY layouts layouts
COPY ingest ingest
COPY db db
COPY assets assets
RUN pip install -e . \
    && python -m compileall -q app callbacks layouts ingest db wsgi.py

# -- final: the virtualenv and the source, no compiler, not root --------------------------
FROM python:3.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    P2PDASH_ENV=production P2PDASH_HOST=0.0.0.0 P2PDASH_PORT=8050 P2PDASH_DATA_DIR=/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/p2pdash-metrics

RUN groupadd --system --gid 10001 p2pdash \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /srv/p2pdash --shell /usr/sbin/nologin p2pdash \
    && mkdir -p /data \
    && chown p2pdash:p2pdash /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/p2pdash /srv/p2pdash
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/p2pdash-entrypoint
WORKDIR /srv/p2pdash

# Numeric, so an orchestrator's runAsNonRoot can check it without the image's passwd.
USER 10001:10001
EXPOSE 8050
# Both roles serve /healthz on P2PDASH_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('P2PDASH_PORT', '8050'), timeout=4)"]
ENTRYPOINT ["p2pdash-entrypoint"]
CMD ["web"]
