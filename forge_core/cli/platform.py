"""Reaching the Platform API from the CLI: the configured one (``FORGE_API__URL`` and
``FORGE_API__TOKEN``), or — the embedded default — the API application served inside this
process, on the configured database, with a token minted by the platform's local key. Either way
callers get a PlatformClient and the same API code: in-process it is an
:class:`~forge_core.api.in_process.InProcessApi`, which calls the API's use cases directly for a
run's state (no HTTP, no token check per call) and sends every other call over an in-memory ASGI
transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from forge_core.adapters.platform_client import PlatformClient
from forge_core.domain.errors import ConfigurationError
from forge_core.plugin.host import PluginHost
from forge_core.settings import Settings

LOCAL_PERMISSIONS = ("read", "run", "status")
"""What `forge run` may do on its own API: read, start runs, record their state."""


@asynccontextmanager
async def platform_client(
    settings: Settings,
    host: PluginHost,
    *,
    subject: str = "forge-cli",
    permissions: tuple[str, ...] = LOCAL_PERMISSIONS,
) -> AsyncIterator[PlatformClient]:
    """``subject`` and ``permissions``: who the embedded API's token names, and what it may do
    (unused with a configured API, whose token says both)."""
    if settings.api.url is not None:
        if settings.api.token is None:
            raise ConfigurationError(
                "FORGE_API__URL is set but FORGE_API__TOKEN is not: the API needs a bearer token",
                where="FORGE_API__TOKEN",
            )
        async with PlatformClient(settings.api.url, settings.api.token.get_secret_value()) as client:
            yield client
        return

    import httpx

    from forge_core.adapters import structured_logs
    from forge_core.adapters.auth.keys import platform_key
    from forge_core.api.app import create_app
    from forge_core.api.in_process import InProcessApi

    structured_logs.configure(path=settings.state_dir / "forge.log")  # the terminal is for the user
    app = create_app(settings, host, console=False)  # reached only through ``InProcessApi``
    token = platform_key(settings).mint(subject, permissions=permissions, ttl_seconds=24 * 3600)
    async with app.router.lifespan_context(app):  # migrations, stores, the outbox sender
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://forge.local", timeout=60) as http:
            services = app.state.services
            principal = await services.verifier.verify(token)  # once: the principal every route would see
            yield InProcessApi(services, principal, http, token)
