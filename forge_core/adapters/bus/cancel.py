"""Cancelling a run's running jobs over the bus: the API announces, every worker listens.

The announcement is a core NATS message (fire and forget, in no stream) on
``pipeline.control.cancel.<run>``: a job that is not running anywhere has nothing to stop, and
one still queued is refused when it starts (its run is cancelled, the API says so). Without a
configured NATS URL the workers listen on the private server of ``forge run`` (or ``forge
server``) on the state directory, found when a cancel is announced: it may start after the API,
and in another process (``forge cancel`` beside a running ``forge run``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from forge_core.adapters.bus.local_server import running_server
from forge_core.adapters.bus.topology import Topology
from forge_core.settings.nats import NatsSettings

if TYPE_CHECKING:  # nats is imported on the first announcement: most API processes never make one
    from nats.aio.client import Client

log = logging.getLogger("forge.bus")


async def announce_cancel(client: Client, topology: Topology, run_id: str) -> None:
    """Tell every worker to cancel the running jobs of ``run_id``."""
    await client.publish(topology.cancel_subject(run_id), run_id.encode())
    await client.flush(timeout=5)


class CancelAnnouncer:
    """The API's door to the workers: connects to NATS on first use, then keeps the connection."""

    def __init__(self, settings: NatsSettings, private_server: Path | None = None) -> None:
        """``private_server``: the state folder of the private server to announce on (used when
        ``settings`` name no URL)."""
        self.settings = settings
        self.private_server = private_server
        self.topology = Topology.from_settings(settings)
        self._client: Client | None = None
        self._url: str | None = None
        self._lock = asyncio.Lock()

    def _target(self) -> NatsSettings | None:
        if self.settings.url or self.private_server is None:
            return self.settings
        found = running_server(self.private_server)
        if found is None:
            return None
        url, token = found
        return self.settings.model_copy(update={"url": url, "token": SecretStr(token)})

    async def announce(self, run_id: str) -> bool:
        """Announce the cancellation of ``run_id``; False (logged) when the bus cannot be reached:
        the run is cancelled all the same, its jobs stop at their next status report."""
        from forge_core.adapters.bus.connection import connect

        try:
            async with self._lock:
                target = self._target()
                if target is None:
                    log.info("run %s cancelled; no private NATS server runs, so no worker to tell", run_id)
                    return False
                if self._client is not None and (self._client.is_closed or self._url != target.url):
                    await self.close()  # a private server restarted on another port
                if self._client is None or self._client.is_closed:
                    self._client = await connect(target, name="forge-api-cancel")
                    self._url = target.url
                client = self._client
            await announce_cancel(client, self.topology, run_id)
            return True
        except Exception as exc:
            log.warning("cannot announce the cancellation of run %s to the workers: %s", run_id, exc)
            return False

    async def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.close()
