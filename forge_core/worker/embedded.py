"""The job bus on one machine: NATS (the configured server, or a private one), in-process
workers, and a dispatcher to drive them — what ``forge run`` composes with the orchestrator.

    async with embedded_jobs(settings, host, recorder, storage, state_dir=state) as dispatcher:
        outcome = await EmbeddedOrchestrator(dispatcher, recorder).execute(run_id, plan, source)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.bus.local_server import LocalNatsServer, private_server_folder
from forge_core.adapters.bus.provisioning import provision
from forge_core.adapters.bus.topology import Topology
from forge_core.plugin.host import PluginHost
from forge_core.ports.platform import RunRecorder
from forge_core.ports.storage import ObjectStore
from forge_core.settings import Settings
from forge_core.worker.runner import Worker


@asynccontextmanager
async def running_worker(worker: Worker) -> AsyncIterator[Worker]:
    """``worker`` pulling on this event loop for the duration of the block, then shut down
    gracefully; a worker that cannot start raises here."""
    async with running_workers([worker]):
        yield worker


@asynccontextmanager
async def running_workers(workers: Sequence[Worker]) -> AsyncIterator[None]:
    """``workers`` started together and pulling on this event loop for the duration of the block,
    then shut down together (each gives its running jobs the grace period at the same time); a
    worker that cannot start raises here, after the others were stopped."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        for worker, task in zip(workers, tasks, strict=True):
            ready = asyncio.create_task(worker.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                ready.cancel()
                task.result()  # its start-up error
        yield
    finally:
        stop.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed


async def start_private_nats(state_dir: Path) -> LocalNatsServer:
    """A private ``nats-server`` with its store in ``state_dir/nats``, started (the caller stops it)."""
    server = LocalNatsServer(private_server_folder(state_dir))
    await asyncio.to_thread(server.start)
    return server


@asynccontextmanager
async def embedded_jobs(
    settings: Settings,
    host: PluginHost,
    recorder: RunRecorder,
    storage: ObjectStore,
    *,
    state_dir: Path,
    job_types: Sequence[str] = ("ci",),
    concurrency: int | None = None,
    private_nats: Awaitable[LocalNatsServer] | None = None,
) -> AsyncIterator[NatsDispatcher]:
    """A dispatcher whose jobs run on in-process workers of ``job_types``. Without a configured
    NATS URL a private ``nats-server`` runs with its store in ``state_dir/nats``, stopped at the end:
    ``private_nats``'s if given (started early by the caller, see :func:`start_private_nats`)."""
    server: LocalNatsServer | None = None
    nats = settings.nats
    if nats.url is None:
        server = await (private_nats or start_private_nats(state_dir))
        nats = nats.model_copy(update={"url": server.url, "token": SecretStr(server.token)})
    url = nats.url
    local = settings.model_copy(update={"nats": nats})
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = await connect(local.nats, url)
            stack.push_async_callback(client.close)
            # The streams once, before the workers start together (each then finds them made).
            await provision(client.jetstream(), Topology.from_settings(local.nats), local.nats)
            workers = [Worker(local, host, job_type, recorder, storage, concurrency=concurrency)
                       for job_type in job_types]
            await stack.enter_async_context(running_workers(workers))
            yield NatsDispatcher(client, local.nats, storage)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
