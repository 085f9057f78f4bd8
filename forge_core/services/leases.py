"""Driving a run: its driver (``forge run``, ``forge server``) holds the run's lease while it drives
it, renewing it in the background. A driver that is killed stops renewing; the API then closes
the run failed ("its driver stopped") instead of leaving it running for ever.

    async with holding_lease(client, run_id, driver_id("forge-run"), settings.leases):
        ...  # drive the run
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Protocol

from forge_core.domain.errors import ForgeError
from forge_core.ports.platform import CONFLICT
from forge_core.settings.leases import LeaseSettings

log = logging.getLogger("forge.leases")


class LeaseHolder(Protocol):
    async def renew_lease(self, run_id: str, driver: str, ttl_seconds: float) -> object: ...


def driver_id(kind: str) -> str:
    """Who drives a run: ``host/pid/kind`` (``kind``: forge-run, forge-server)."""
    return f"{socket.gethostname()}/{os.getpid()}/{kind}"


@contextlib.asynccontextmanager
async def holding_lease(
    holder: LeaseHolder, run_id: str, driver: str, settings: LeaseSettings
) -> AsyncIterator[None]:
    """The run's lease taken now (a refusal raises here) and renewed every ``renew_seconds``
    for the duration of the block. A renewal that fails is retried at the next beat (the API may
    be away for a moment); a refused one (the run was closed) ends the renewals."""
    await holder.renew_lease(run_id, driver, settings.ttl_seconds)
    renewing = asyncio.create_task(_renew(holder, run_id, driver, settings), name=f"lease-{run_id}")
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing


async def _renew(holder: LeaseHolder, run_id: str, driver: str, settings: LeaseSettings) -> None:
    while True:
        await asyncio.sleep(settings.renew_seconds)
        try:
            await holder.renew_lease(run_id, driver, settings.ttl_seconds)
        except ForgeError as error:
            if error.code == CONFLICT:
                log.warning("run %s: its lease is no longer renewed: %s", run_id, error)
                return
            log.warning("run %s: renewing its lease failed (retried in %g s): %s", run_id,
                        settings.renew_seconds, error)
