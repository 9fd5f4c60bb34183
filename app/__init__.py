"""The application factory: Flask, the database, the Dash pages, each bound by a small helper."""

from __future__ import annotations

import atexit
import logging

from flask import Flask
from sqlalchemy.exc import OperationalError

from app import headers, state
from app.config import Settings, describe, load_settings
from app.extensions import cache
from app.logs import configure_logging, register_secret
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the p2pdash server: Flask with Dash mounted on it."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    register_secret(settings.secret_key)
    register_secret(settings.admin_password)
    settings = resolve_database(settings)
    server = Flask(__name__)
    # No request body the app takes is larger than a P2P push (1 MB); the server itself
    # (app/server.py) refuses anything over 16 MB before reading it.
    server.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False,
                         MAX_CONTENT_LENGTH=1_048_576 + 4096,
                         MAX_FORM_MEMORY_SIZE=65_536, MAX_FORM_PARTS=100)
    _bind_state(server, settings)
    _register_extensions(server, settings)
    _register_auth(server, settings)
    _register_blueprints(server)
    _register_metrics(server)
    _mount_dash(server)
    headers.register(server)
    _start_ingest(server, settings)
    log.info("p2pdash ready", extra=describe(settings))
    return server


def resolve_database(settings: Settings) -> Settings:
    """Point the settings at the embedded cluster when DATABASE_URL is unset."""
    if not settings.uses_embedded_database:
        return settings
    cluster = EmbeddedPostgres(settings.data_dir / "pg")
    url = cluster.ensure_running()
    register_secret(cluster.password)
    return settings.with_database_url(url)


def _bind_state(server: Flask, settings: Settings) -> None:
    assert settings.database_url is not None
    # One pooled connection per request thread: with fewer, a busy moment opens overflow
    # connections and closes them again, and each new backend plans its first hypertable
    # queries on cold catalog caches (211 sessions in one 30 s run of bench/views_load.py
    # with 4 workers of 8 threads on a pool of 5).
    engine = make_engine(settings.database_url, pool_size=settings.threads)
    server.extensions["p2pdash"] = state.AppState(settings=settings, engine=engine)
    if settings.auto_migrate:
        try:
            upgrade(engine)
        except OperationalError as error:
            # Serve anyway: /healthz answers 503 and the pages say the database is down.
            log.error("database unreachable; migrations not applied: %s", error.orig)


def _register_extensions(server: Flask, settings: Settings) -> None:
    if settings.redis_url:
        cache.init_app(server, config={"CACHE_TYPE": "RedisCache",
                                       "CACHE_REDIS_URL": settings.redis_url})
    else:
        cache.init_app(server, config={"CACHE_TYPE": "SimpleCache"})
    from db import cache as query_cache

    query_cache.bind(cache, lambda: state.current().engine)


def _register_auth(server: Flask, settings: Settings) -> None:
    from app import auth

    auth.register(server, settings)
    auth.ensure_first_admin(state.current_of(server).engine, settings)


def _register_blueprints(server: Flask) -> None:
    from app import api, kiosk
    from app.exports import bp as exports_bp
    from app.health import bp as health_bp
    from app.vendor import bp as vendor_bp

    server.register_blueprint(health_bp)
    server.register_blueprint(exports_bp)
    server.register_blueprint(vendor_bp)
    api.register(server)
    kiosk.register(server)


def _register_metrics(server: Flask) -> None:
    from app import metrics

    metrics.register(server)


def _start_ingest(server: Flask, settings: Settings) -> None:
    """Run ingestion in this process when configured (it ingests only while elected leader)."""
    if not settings.ingest_enabled:
        return
    from ingest.service import IngestService

    service = IngestService(settings).start()
    server.extensions["p2pdash_ingest"] = service
    atexit.register(service.stop)


def _mount_dash(server: Flask) -> None:
    from app.dashboard import mount

    mount(server)
