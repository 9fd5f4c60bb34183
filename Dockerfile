# p2pdash web + ingest. Needs DATABASE_URL (TimescaleDB) and SECRET_KEY; REDIS_URL for several replicas.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    P2PDASH_ENV=production P2PDASH_HOST=0.0.0.0 P2PDASH_PORT=8050 P2PDASH_DATA_DIR=/data

RUN useradd --system --create-home --home-dir /srv/p2pdash p2pdash \
    && mkdir -p /data && chown p2pdash /data
WORKDIR /srv/p2pdash

COPY pyproject.toml README.md wsgi.py ./
COPY app app
COPY callbacks callbacks
COPY layouts layouts
COPY ingest ingest
COPY db db
COPY assets assets
# Editable, so the top-level assets/ folder stays beside the code that serves it.
RUN pip install --no-cache-dir -e .

USER p2pdash
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4)" || exit 1
CMD ["p2pdash", "run"]
