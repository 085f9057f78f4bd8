"""``forge streams apply`` and ``forge db upgrade``: what an installation runs once per install or
upgrade (the Helm chart runs both as Jobs), rather than leaving it to whichever process starts first."""

from __future__ import annotations

from typing import Annotated

import typer

from forge_core.cli.common import fail

streams_app = typer.Typer(help="The JetStream streams and consumers of the job bus.", no_args_is_help=True)
db_app = typer.Typer(help="The Platform API's database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(streams_app, name="streams")
    app.add_typer(db_app, name="db")


@streams_app.command("apply")
def streams_apply(
    replicas: Annotated[
        int | None, typer.Option(min=1, max=5, help="Stream and consumer replicas (default FORGE_NATS__REPLICAS).")
    ] = None,
) -> None:
    """Create or update every stream and every worker type's consumer (idempotent); exit 7 when
    NATS refuses or cannot be reached, 2 on bad settings."""
    import asyncio

    from forge_core.adapters.bus.connection import connect
    from forge_core.adapters.bus.provisioning import Action, apply_topology
    from forge_core.adapters.bus.topology import Topology
    from forge_core.domain.errors import ForgeError
    from forge_core.settings import load_settings

    async def apply() -> list[tuple[str, str, Action]]:
        settings = load_settings()
        if replicas is not None:
            settings.nats.replicas = replicas
        client = await connect(settings.nats, name="forge-streams-apply")
        try:
            return await apply_topology(client.jetstream(), Topology.from_settings(settings.nats), settings.nats)
        finally:
            await client.close()

    try:
        for what, name, action in asyncio.run(apply()):
            typer.echo(f"{what} {name}: {action}")
    except ForgeError as error:
        fail(error)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="The migration to bring the schema to.")] = "head",
) -> None:
    """Apply the database migrations (idempotent; concurrent runs on PostgreSQL wait for each other)."""
    import asyncio

    from forge_core.adapters.db.engine import create_engine, current_revision, migrate
    from forge_core.domain.errors import ForgeError
    from forge_core.settings import load_settings

    async def upgrade() -> str | None:
        settings = load_settings()
        engine = create_engine(settings.database)
        try:
            await migrate(engine, revision)
            return await current_revision(engine)
        except ForgeError:
            raise
        except Exception as exc:  # driver errors: unreachable server, refused login, unknown revision (exit 1)
            raise ForgeError(
                f"cannot migrate the database: {type(exc).__name__}: {exc}", where="FORGE_DATABASE__URL"
            ) from exc
        finally:
            await engine.dispose()

    try:
        typer.echo(f"database at revision {asyncio.run(upgrade())}")
    except ForgeError as error:
        fail(error)
