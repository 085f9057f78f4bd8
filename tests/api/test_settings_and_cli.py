"""Settings checked at start, migrations in step with the models, and the CLI commands."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from forge_core.adapters.auth.keys import load_or_create
from forge_core.adapters.auth.tokens import unverified
from forge_core.adapters.db.engine import create_engine, migrate
from forge_core.adapters.db.models import Base
from forge_core.cli import api as api_commands
from forge_core.domain.errors import ConfigurationError
from forge_core.settings import Settings, load_settings
from forge_core.settings.database import DatabaseSettings


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("FORGE_DATABASE__URL", "mysql://db/forge", "FORGE_DATABASE__URL: Value error"),
        ("FORGE_AUTH__OIDC__ISSUER", "not a url", "FORGE_AUTH__OIDC__ISSUER"),
        ("FORGE_AUTH__OIDC__ALGORITHMS", "HS256", "FORGE_AUTH__OIDC__ALGORITHMS: Value error"),
        ("FORGE_AUTH__GITHUB__ALLOW", '{"nope": ["run"]}', "'nope' is not a repository"),
        ("FORGE_AUTH__GITHUB__ALLOW", '{"acme/app": ["fly"]}', "unknown permission(s) fly"),
        ("FORGE_AUTH__GITHUB__ALLOW", '{"acme/app": ["run"], "Acme/App": ["read"]}',
         "'Acme/App' and 'acme/app' are one repository"),
        ("FORGE_AUTH__ROLES", '{"ops": ["root"]}', "role 'ops': unknown permission(s) root"),
        ("FORGE_API__PORT", "99999", "FORGE_API__PORT"),
        ("FORGE_API__PROTECTED_ENVIRONMENTS", "moon", "protected_environments ['moon'] are not"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert complaint in str(caught.value)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_DATABASE__URL", "postgresql://forge@127.0.0.1/forge")
    monkeypatch.setenv("FORGE_API__WEBHOOK_SECRET", "abc")
    monkeypatch.setenv("FORGE_AUTH__GITHUB__ALLOW", '{"acme/app": ["run", "read"]}')
    monkeypatch.setenv("FORGE_API__ENVIRONMENTS", "dev,production")
    settings = load_settings()
    assert settings.database.resolved_url() == "postgresql+asyncpg://forge@127.0.0.1/forge"
    assert settings.api.webhook_secret is not None
    assert "abc" not in repr(settings.api.webhook_secret)
    assert settings.auth.github.allow == {"acme/app": ["run", "read"]}
    assert settings.api.environments == ["dev", "production"]


def test_the_default_database_is_a_sqlite_file_in_the_state_dir(tmp_path: Path) -> None:
    expected = f"sqlite+aiosqlite:///{tmp_path / 'forge.db'}"
    assert DatabaseSettings(state_dir=tmp_path).resolved_url() == expected


def test_every_cache_lives_in_the_state_dir_unless_placed(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert settings.worker.cache_dir == tmp_path / "cache" / "worker"
    assert settings.git.cache_dir == tmp_path / "cache" / "git"
    assert settings.cue.cache_dir == tmp_path / "cache" / "discovery"
    placed = Settings(state_dir=tmp_path, worker={"cache_dir": tmp_path / "elsewhere"})
    assert placed.worker.cache_dir == tmp_path / "elsewhere"
    assert placed.git.cache_dir == tmp_path / "cache" / "git"


def test_migrations_create_exactly_the_models(database_url: str, tmp_path: Path) -> None:
    async def differences() -> list[object]:
        engine = create_engine(DatabaseSettings(url=database_url, state_dir=tmp_path))
        await migrate(engine)
        await migrate(engine)  # idempotent

        def compare(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as connection:
            found = await connection.run_sync(compare)
        await engine.dispose()
        return found

    assert asyncio.run(differences()) == []


def test_the_signing_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    first = load_or_create(path, issuer="i", audience="a")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create(path, issuer="i", audience="a").kid == first.kid


def test_a_broken_signing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(ConfigurationError, match="cannot read signing key"):
        load_or_create(path, issuer="i", audience="a")


def cli() -> typer.Typer:
    app = typer.Typer()
    api_commands.register(app)
    return app


def test_forge_token_create_mints_a_token_for_the_role(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FORGE_DATABASE__STATE_DIR", str(tmp_path))
    arguments = ["token", "create", "--role", "worker", "--subject", "ci-worker"]
    result = CliRunner().invoke(cli(), arguments)
    assert result.exit_code == 0, result.output
    _, claims = unverified(result.output.strip())
    assert (claims["sub"], claims["roles"]) == ("ci-worker", ["worker"])
    assert claims["iss"] == "catalyst-forge"
    assert (tmp_path / "signing-key.pem").exists()


def test_forge_token_create_refuses_an_unknown_role(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FORGE_DATABASE__STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(cli(), ["token", "create", "--role", "wizard"])
    assert result.exit_code == 2
    assert "unknown role(s) wizard" in result.output


def test_forge_api_exits_cleanly_on_bad_settings(tmp_path: Path) -> None:
    env = {"FORGE_DATABASE__URL": "mysql://x/y", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "forge_core.cli.main", "api"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "FORGE_DATABASE__URL" in done.stderr
