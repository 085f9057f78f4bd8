"""Cancelling a run's running jobs over the bus: the API announces, every worker listens.

The announcement is a core NATS message (fire and forget, in no stream) on
``pipeline.control.cancel.<run>``: a job that is not running anywhere has nothing to stop, and
one still queued is refused when it starts (its run is cancelled, the API says so).
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.topology import Topology
from forge_core.settings.nats import NatsSettings

log = logging.getLogger("forge.bus")


async def announce_cancel(client: Client, topology: Topology, run_id: str) -> None:
    """Tell every worker to cancel the running jobs of ``run_id``."""
    await client.publish(topology.cancel_subject(run_id), run_id.encode())
    await client.flush(timeout=5)


class CancelAnnouncer:
    """The API's door to the workers: connects to NATS on first use, then keeps the connection."""

    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self.topology = Topology.from_settings(settings)
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def announce(self, run_id: str) -> bool:
        """Announce the cancellation of ``run_id``; False (logged) when the bus cannot be reached:
        the run is cancelled all the same, its jobs stop at their next status report."""
        try:
            async with self._lock:
                if self._client is None or self._client.is_closed:
                    self._client = await connect(self.settings, name="forge-api-cancel")
            await announce_cancel(self._client, self.topology, run_id)
            return True
        except Exception as exc:
            log.warning("cannot announce the cancellation of run %s to the workers: %s", run_id, exc)
            return False

    async def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.close()
