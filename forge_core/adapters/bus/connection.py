"""Connecting to NATS: one place that turns "cannot reach the server" into a clear error."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

from forge_core.domain.errors import MessagingError
from forge_core.settings.nats import NatsSettings

log = logging.getLogger("forge.bus")

RECONNECT_WAIT = 2.0
"""Seconds between reconnection attempts after an outage."""


async def connect(settings: NatsSettings, url: str | None = None, *, name: str = "forge") -> Client:
    """A connection to ``url`` (default: the configured one) that reconnects after outages.

    Raises MessagingError naming the URL when the server cannot be reached at start.
    """
    target = url or settings.url
    if not target:
        raise MessagingError("no NATS server configured", where="FORGE_NATS__URL")

    connected = False

    async def on_error(exc: Exception) -> None:
        # Failures of the first connection are reported once, by the error below.
        if connected:
            log.warning("nats %s: %s", target, exc)

    async def on_disconnected() -> None:
        log.info("nats %s: disconnected", target)

    async def on_reconnected() -> None:
        log.info("nats %s: reconnected", target)

    try:
        client = await nats.connect(
            servers=[target],
            name=name,
            token=settings.token.get_secret_value() if settings.token else None,
            connect_timeout=settings.connect_timeout,
            # One quick retry for the first connection, so an unreachable server fails fast
            # with its URL; the configured patience applies once connected (set below).
            allow_reconnect=True,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
    except Exception as exc:  # nats-py raises NoServersError, OSError, TimeoutError, …
        raise MessagingError(
            f"cannot connect to NATS at {target} ({type(exc).__name__}: {exc or 'no answer'})",
            where="FORGE_NATS__URL" if url is None else "nats",
        ) from exc
    connected = True
    client.options["max_reconnect_attempts"] = settings.reconnect_attempts
    client.options["reconnect_time_wait"] = RECONNECT_WAIT
    return client
