"""The async engine for the configured database, and migrations applied at start.

SQLite (the embedded default) gets one pooled connection, so writes are serialised in the process
(and ``busy_timeout`` waits for another process such as ``forge notifier``); PostgreSQL gets a pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forge_core.adapters.db.template import MIGRATIONS, copy_template
from forge_core.settings.database import DatabaseSettings

if TYPE_CHECKING:  # alembic is imported only to migrate: a new SQLite database is copied instead
    from alembic.config import Config

SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL")


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = make_url(settings.resolved_url())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=settings.pool_size, max_overflow=settings.pool_size, pool_pre_ping=True
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head", *, use_template: bool = True) -> None:
    """Bring the schema to ``revision`` (idempotent; PostgreSQL serialises concurrent starters).
    A SQLite file not yet there is copied from the template migrated at setup, when one matches
    the migrations (:mod:`forge_core.adapters.db.template`)."""
    database = engine.url.database
    if (use_template and revision == "head" and engine.url.get_backend_name() == "sqlite"
            and database and database != ":memory:" and copy_template(Path(database))):
        return

    def upgrade(connection: Connection) -> None:
        from alembic import command

        if connection.dialect.name == "postgresql":
            # Two processes starting together must not both create the tables.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242424242)")
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the schema is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
