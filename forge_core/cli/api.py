"""``forge api``, ``forge token create`` and ``forge notifier``: serving the Platform API."""

from __future__ import annotations

from typing import Annotated

import typer

token_app = typer.Typer(help="Platform tokens signed with the local key.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command(name="api")(api)
    app.command(name="notifier")(notifier)
    app.add_typer(token_app, name="token")


def api(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default FORGE_API__HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FORGE_API__PORT).")] = None,
) -> None:
    """Run the Platform API (settings from FORGE_* variables, checked before it starts)."""
    import uvicorn

    from forge_core.cli.main import fail
    from forge_core.domain.errors import ForgeError
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings

    try:  # fail here, clearly, rather than inside the server's start-up
        settings = load_settings()
        load_plugins(settings.plugins)
    except ForgeError as error:
        fail(error)
    uvicorn.run(
        "forge_core.api.asgi:application", factory=True, host=host or settings.api.host,
        port=port or settings.api.port, log_config=None, access_log=False, proxy_headers=False,
    )


@token_app.command("create")
def create_token(
    role: Annotated[
        list[str],
        typer.Option("--role", help="A role (repeatable): viewer, developer, worker, admin, …"),
    ],
    subject: Annotated[str, typer.Option(help="Who the token names.")] = "forge-cli",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=60, max=365 * 86400)] = 3600,
) -> None:
    """Mint a token for the local API, signed with the platform key (created if needed)."""
    from forge_core.adapters.auth.keys import platform_key
    from forge_core.cli.main import fail
    from forge_core.domain.errors import ConfigurationError, ForgeError
    from forge_core.settings import load_settings

    try:
        settings = load_settings()
        unknown = sorted(set(role) - set(settings.auth.roles))
        if unknown:
            raise ConfigurationError(
                f"unknown role(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(settings.auth.roles))}",
                where="--role",
            )
        typer.echo(platform_key(settings).mint(subject, roles=role, ttl_seconds=ttl))
    except ForgeError as error:
        fail(error)


def notifier() -> None:
    """Deliver commit statuses from the outbox (when FORGE_API__NOTIFIER__IN_PROCESS is off)."""
    import asyncio

    from forge_core.adapters.db.engine import create_engine, migrate
    from forge_core.adapters.db.store import SqlStore
    from forge_core.adapters.structured_logs import configure
    from forge_core.cli.main import fail, plugin_host
    from forge_core.domain.errors import ConfigurationError, ForgeError
    from forge_core.services.outbox import sender_from_settings
    from forge_core.settings import load_settings

    async def serve() -> None:
        settings = load_settings()
        engine = create_engine(settings.database)
        await migrate(engine)
        registry = plugin_host().registry
        sender = sender_from_settings(settings.api.notifier, registry, SqlStore(engine))
        if sender is None:
            raise ConfigurationError("no notifier is configured", where="FORGE_API__NOTIFIER__TYPE")
        try:
            await sender.run_forever()
        finally:
            await engine.dispose()

    configure()
    try:
        asyncio.run(serve())
    except ForgeError as error:
        fail(error)
    except KeyboardInterrupt:
        pass
