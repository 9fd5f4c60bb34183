"""Alembic environment: runs on the connection handed in by db.migrate, or on DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine

from db.schema import metadata

config = context.config


def run_on(connection) -> None:
    """Run the migrations on one open connection, in one transaction."""
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    from app.config import load_settings

    url = load_settings().database_url
    if url is None:
        raise SystemExit("DATABASE_URL: set it to run alembic directly, "
                         "or use 'p2pdash db upgrade'")
    with create_engine(url).connect() as own_connection:
        run_on(own_connection)
