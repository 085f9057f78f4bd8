"""Serving the web console on this machine, for ``forge ui`` and ``forge run --ui``
(imported when one of them runs: asyncio and uvicorn stay out of every other command's start).

On the embedded defaults the console is served by an API on a loopback port (the same database
and signing key as ``forge run``), and opened through a login link: a short-lived token signed
by the platform key that opens a console session for the login name (read, deploy, approve).
With ``FORGE_API__URL`` set the console is that API's ``/ui``, logged in through its OIDC issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import typer

if TYPE_CHECKING:
    import uvicorn
    from rich.console import Console

    from forge_core.cli.pipeline import Rerun, Source
    from forge_core.plugin.host import PluginHost
    from forge_core.settings import Settings

CONSOLE_PERMISSIONS = ("read", "deploy", "approve")
"""What the login name may do in the console of its own machine."""


async def serve_until_stopped(settings: Settings, host: PluginHost, port: int, no_browser: bool) -> None:
    async with console_server(settings, host, port) as base:
        show(login_link(settings, base, "/ui/runs"), no_browser)
        await _stopped(lambda: typer.echo("Ctrl-C stops the console."))


def show(url: str, no_browser: bool) -> None:
    typer.echo(f"console: {url}")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)


async def run_with_console(
    settings: Settings, host: PluginHost, source: Source, console: Console, parallel: int, *, publish: bool = False,
    rerun: Rerun | None = None,
) -> int:
    """``forge run --ui``: the run, with the console served beside it; it stays open after the
    run ends until Ctrl-C, so the run can still be looked at."""
    from forge_core.cli.pipeline import run_pipeline

    if settings.api.url is not None:
        base = settings.api.url.rstrip("/")
        return await run_pipeline(
            settings, host, source, console, parallel=parallel, publish=publish, rerun=rerun,
            on_run=lambda run_id: console.print(f"console: {base}/ui/runs/{run_id}", soft_wrap=True),
        )
    async with console_server(settings, host) as base:
        def announce(run_id: str) -> None:
            console.print(f"console: {login_link(settings, base, f'/ui/runs/{run_id}')}", soft_wrap=True)

        code = await run_pipeline(settings, host, source, console, parallel=parallel, publish=publish, on_run=announce,
                                  rerun=rerun)
        await _stopped(lambda: console.print("the console stays open: Ctrl-C stops it"))
    return code


def login_link(settings: Settings, base: str, page: str) -> str:
    from forge_core.adapters.auth.keys import platform_key
    from forge_core.api.ui.session import LOGIN_LINK_SECONDS, LOGIN_PURPOSE

    token = platform_key(settings).mint(
        getpass.getuser(), permissions=CONSOLE_PERMISSIONS, ttl_seconds=LOGIN_LINK_SECONDS,
        extra={"purpose": LOGIN_PURPOSE},
    )
    return f"{base}/ui/session?token={token}&next={quote(page, safe='')}"


def _quiet_server_class() -> type[uvicorn.Server]:
    import uvicorn

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # Ctrl-C is the CLI's: it cancels a run, then stops the console

    return Quiet


@contextlib.asynccontextmanager
async def console_server(settings: Settings, host: PluginHost, port: int = 0) -> AsyncIterator[str]:
    """The Platform API (and so the console) served on 127.0.0.1 while the block runs; yields
    its base URL."""
    import uvicorn

    from forge_core.adapters import structured_logs
    from forge_core.api.app import create_app

    structured_logs.configure(path=settings.state_dir / "forge.log")  # the terminal is for the user
    app = create_app(settings, host)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, proxy_headers=False,
        lifespan="on",
    )
    server = _quiet_server_class()(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # the reason it could not start (a port in use, …)
            raise RuntimeError("the console server stopped before it started")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await serving


async def _stopped(announce: Callable[[], None]) -> None:
    """Until Ctrl-C or SIGTERM; ``announce`` says so once they are caught."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        announce()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
