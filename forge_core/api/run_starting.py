"""The run starter of a fleet's API replica: with ``FORGE_ORCHESTRATOR__KIND=argo`` each replica
hands every new run (``POST /v1/runs``, a GitHub push webhook) to Argo Workflows, exactly once
however many replicas look (the claims of :mod:`forge_core.services.run_starter`).

Starting a run here means: fetch and discover the commit through a ``discovery`` job on the bus
(the fleet's discovery workers fetch it from the run's clone URL into their warm git cache),
record its plan, submit its Workflow and follow it until it ends, syncing its status into the
run. The replica talks to its own API in-process (a token it mints for itself), so every change
goes through the same checks as a worker's. A replica that stops leaves the Workflows it follows
to themselves (each closes its run through its final task, or its exit handler); a run it was
still discovering is closed cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from forge_core.adapters.argo.client import ArgoClient
from forge_core.adapters.argo.orchestrator import ArgoOrchestrator
from forge_core.adapters.auth.keys import SigningKey
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ConfigurationError
from forge_core.services.run_launch import PipelineLauncher
from forge_core.services.run_starter import RunStarter, StarterStore
from forge_core.settings import Settings

log = logging.getLogger("forge.api.run_starting")
STARTER_PERMISSIONS = ("read", "run", "status")
"""What the starter's own token may do: read runs, record plans and statuses."""
STARTER_TOKEN_TTL = 365 * 86400


@contextlib.asynccontextmanager
async def fleet_run_starter(
    app: FastAPI, settings: Settings, store: StarterStore, key: SigningKey,
) -> AsyncIterator[RunStarter]:
    """The replica's run starter on Argo Workflows, polling until the context ends."""
    if settings.nats.url is None:
        raise ConfigurationError(
            "FORGE_ORCHESTRATOR__KIND=argo: the API starts runs with a discovery job on the bus; "
            "set FORGE_NATS__URL", where="FORGE_NATS__URL",
        )
    bus = await connect(settings.nats, name="forge-api-run-starter")
    argo = ArgoClient(settings.orchestrator.argo)
    token = key.mint("forge-api-run-starter", permissions=STARTER_PERMISSIONS, ttl_seconds=STARTER_TOKEN_TTL)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://forge.local", timeout=60)
    client = PlatformClient("http://forge.local", token, client=http)
    try:
        dispatcher = NatsDispatcher(bus, settings.nats, FsspecStore.from_settings(settings.storage))
        orchestrator = ArgoOrchestrator(argo, client, settings.orchestrator.argo)

        async def status_of(run_id: str) -> str:
            return (await client.get_run(run_id)).status.value

        launcher = PipelineLauncher(settings.server, dispatcher, client, orchestrator, status_of=status_of)
        starter = RunStarter(store, launcher, poll_seconds=settings.server.poll_seconds)
        polling = asyncio.create_task(starter.run_forever(), name="run-starter")
        log.info("run starter %s: runs are submitted to Argo Workflows at %s", starter.owner,
                 settings.orchestrator.argo.url)
        try:
            yield starter
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await launcher.aclose(detach=True)
    finally:
        await http.aclose()
        await argo.close()
        await bus.close()
