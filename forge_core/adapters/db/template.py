"""A new SQLite database copied from a template migrated once, at setup, instead of migrated.

Every new state directory (each first ``forge run``) would otherwise import alembic and run every
migration, about half a second of its start. The template is named by a digest of the migrations,
so a new or changed migration leaves no template to match and the database is migrated as before.
Standard library only: the fast path imports neither alembic nor SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def schema_digest(migrations: Path = MIGRATIONS) -> str:
    """What the migrations are: every file that shapes the schema, by name and content."""
    digest = hashlib.sha256()
    for path in sorted([migrations / "env.py", *(migrations / "versions").glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def template_path(migrations: Path = MIGRATIONS) -> Path:
    return migrations / f"sqlite-template-{schema_digest(migrations)}.db"


def copy_template(database: Path, template: Path | None = None) -> bool:
    """Make the not yet existing ``database`` a copy of the template; False when there is no
    template for these migrations or the database exists (then it is migrated as usual). The copy
    appears whole or not at all: it is written beside, then linked in without replacing anything."""
    if database.exists():  # the usual start: nothing to copy, no digest to compute
        return False
    template = template or template_path()
    if not template.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{database.name}.", dir=database.parent)
    os.close(handle)
    try:
        shutil.copyfile(template, partial)
        os.link(partial, database)  # fails if another starter made it meanwhile: theirs stands
    except FileExistsError:
        return False
    finally:
        os.unlink(partial)
    return True


async def build_template(migrations: Path = MIGRATIONS) -> Path:
    """Migrate an empty database to head and keep it as the template (``scripts/setup`` does)."""
    from forge_core.adapters.db.engine import create_engine, migrate
    from forge_core.settings.database import DatabaseSettings

    target = template_path(migrations)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / "template.db"
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{built}"))
        try:
            await migrate(engine, use_template=False)
        finally:
            await engine.dispose()
        # One file, no write-ahead log beside it: each copy sets its own pragmas on connect.
        with contextlib.closing(sqlite3.connect(built)) as connection:
            connection.execute("PRAGMA journal_mode=DELETE")
        os.replace(built, target)
    for stale in migrations.glob("sqlite-template-*.db"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    import asyncio

    print(asyncio.run(build_template()))
