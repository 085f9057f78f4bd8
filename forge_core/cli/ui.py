"""``forge ui`` and ``forge run --ui``: the web console on this machine (served by
:mod:`forge_core.cli.console_serving`, imported only when the console is opened)."""

from __future__ import annotations

from typing import Annotated

import typer

from forge_core.cli.common import fail, settings_and_plugins


def register(app: typer.Typer) -> None:
    app.command(name="ui")(ui)


def ui(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL only.")] = False,
) -> None:
    """Open the web console: runs, logs, releases, environments, plugins (Ctrl-C stops it)."""
    import asyncio

    from forge_core.cli.console_serving import serve_until_stopped, show
    from forge_core.domain.errors import ForgeError

    try:
        settings, host = settings_and_plugins()
        if settings.api.url is not None:
            show(f"{settings.api.url.rstrip('/')}/ui/runs", no_browser)
            return
        asyncio.run(serve_until_stopped(settings, host, port, no_browser))
    except ForgeError as error:
        fail(error)


