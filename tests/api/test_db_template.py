"""A new SQLite database copied from the migrated template has exactly the migrated schema, and
a template that does not match the migrations is never used."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from forge_core.adapters.db import template
from forge_core.adapters.db.engine import create_engine, current_revision, migrate
from forge_core.settings.database import DatabaseSettings


def _schema(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    return sorted(rows)


def _migrate(database: Path, **options: bool) -> str | None:
    async def go() -> str | None:
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{database}"))
        try:
            await migrate(engine, **options)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _migrations_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(template.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    return copy


def test_a_copy_of_the_template_is_the_migrated_schema_at_head(tmp_path: Path) -> None:
    built = asyncio.run(template.build_template(_migrations_copy(tmp_path)))
    migrated, copied = tmp_path / "migrated.db", tmp_path / "state" / "copied.db"
    head = _migrate(migrated, use_template=False)

    assert template.copy_template(copied, built)
    assert _schema(copied) == _schema(migrated)
    assert _migrate(copied) == head  # an upgrade of the copy finds nothing to do
    assert not list(copied.parent.glob(".copied.db.*")), "no partial copy left behind"


def test_an_existing_database_is_never_replaced_by_the_template(tmp_path: Path) -> None:
    built = asyncio.run(template.build_template(_migrations_copy(tmp_path)))
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"")
    assert not template.copy_template(existing, built)
    assert existing.read_bytes() == b""


def test_changed_migrations_name_another_template(tmp_path: Path) -> None:
    migrations = _migrations_copy(tmp_path)
    before = template.template_path(migrations)
    (migrations / "versions" / "9999_new.py").write_text('revision = "9999"\n')
    after = template.template_path(migrations)
    assert after != before
    assert not template.copy_template(tmp_path / "new.db", after)  # none built: migrated as usual


def test_a_forge_api_start_on_a_new_state_directory_does_not_import_alembic(tmp_path: Path) -> None:
    asyncio.run(template.build_template())  # the one scripts/setup makes
    probe = (
        "import asyncio, sys\n"
        "from forge_core.adapters.db.engine import create_engine, migrate\n"
        "from forge_core.settings.database import DatabaseSettings\n"
        f"engine = create_engine(DatabaseSettings(url='sqlite+aiosqlite:///{tmp_path}/forge.db'))\n"
        "asyncio.run(migrate(engine))\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert (tmp_path / "forge.db").is_file()
