"""``forge server``: the whole platform in one long-running process, executing the runs it is given.

The Platform API (webhooks, ``POST /v1/runs``) on ``--host``/``--port``, in-process workers for
``discovery``, ``ci``, ``artifact``, ``release`` and ``deployment`` jobs (NATS: the configured
server, or a private one), the run starter handing each new run to the orchestrator once (the
embedded one, or Argo Workflows when ``FORGE_ORCHESTRATOR__KIND=argo``), and the launcher
fetching each run's repository from its clone URL (``FORGE_SERVER__*``) into the warm git cache.
On the embedded orchestrator a commit that releases goes as far as ``forge run`` takes it: its
releases, and their auto-deployment to the first environment, by the run's author. Ctrl-C
(SIGINT, SIGTERM) stops it: runs still executing are closed cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from forge_core.cli.common import fail, settings_and_plugins

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.domain.plan import DiscoveryDocument
    from forge_core.plugin.host import PluginHost
    from forge_core.ports.orchestrator import JobDispatcher
    from forge_core.services.run_launch import AfterArtifacts
    from forge_core.services.schemas import RunSummary
    from forge_core.settings import Settings

SERVER_PERMISSIONS = ("read", "run", "status", "release", "deploy")


def register(app: typer.Typer) -> None:
    app.command(name="server")(server)


def server(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default FORGE_API__HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FORGE_API__PORT).")] = None,
    publish: Annotated[bool, typer.Option(help="Artifacts publish (else every publisher only plans).")] = False,
) -> None:
    """Serve the API and execute every new run (workers, orchestrator, run starter in-process)."""
    import asyncio
    import logging
    import signal

    from forge_core.domain.errors import ForgeError

    # A service manager's stop (SIGTERM) is a Ctrl-C: uvicorn re-raises the signal it caught once it
    # has stopped serving, and a plain SIGTERM would then end the process before the runs still
    # executing are closed cancelled.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: signal.raise_signal(signal.SIGINT))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings, plugins = settings_and_plugins()
        asyncio.run(_serve(settings, plugins, host or settings.api.host, port or settings.api.port, publish))
    except ForgeError as error:
        fail(error)


async def _serve(settings: Settings, plugins: PluginHost, host: str, port: int, publish: bool) -> None:
    import asyncio
    import contextlib

    import httpx
    import uvicorn

    from forge_core.adapters.auth.keys import platform_key
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.adapters.storage import FsspecStore
    from forge_core.api.app import create_app
    from forge_core.ports.orchestrator import Orchestrator
    from forge_core.services.leases import driver_id
    from forge_core.services.orchestrator import EmbeddedOrchestrator
    from forge_core.services.run_launch import Lease, PipelineLauncher
    from forge_core.services.run_starter import RunStarter
    from forge_core.worker.embedded import embedded_jobs

    app = create_app(settings, plugins, start_runs=False)
    token = platform_key(settings).mint("forge-server", permissions=SERVER_PERMISSIONS, ttl_seconds=365 * 86400)
    parallel = settings.server.parallel
    async with app.router.lifespan_context(app):  # migrations, the store, the outbox sender
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://forge.local", timeout=60) as http:
            client = PlatformClient("http://forge.local", token, client=http)
            storage = FsspecStore.from_settings(settings.storage)
            async with embedded_jobs(
                settings, plugins, client, storage, state_dir=settings.state_dir,
                job_types=("discovery", "ci", "artifact", "release", "deployment"), concurrency=parallel,
            ) as dispatcher:
                orchestrator: Orchestrator
                after_artifacts: AfterArtifacts | None = None
                closers = []
                if settings.orchestrator.kind == "argo":
                    from forge_core.adapters.argo.client import ArgoClient
                    from forge_core.adapters.argo.orchestrator import ArgoOrchestrator

                    argo = ArgoClient(settings.orchestrator.argo)
                    closers.append(argo.close)
                    orchestrator = ArgoOrchestrator(argo, client, settings.orchestrator.argo)
                else:
                    orchestrator = EmbeddedOrchestrator(dispatcher, client, max_parallel=parallel)
                    after_artifacts = _release_stages(settings, dispatcher, client, publish)

                async def status_of(run_id: str) -> str:
                    return (await client.get_run(run_id)).status.value

                lease = Lease(client, driver_id("forge-server"), settings.leases)  # killed: its runs close
                launcher = PipelineLauncher(settings.server, dispatcher, client, orchestrator, publish=publish,
                                            status_of=status_of, lease=lease, after_artifacts=after_artifacts)
                starter = RunStarter(app.state.services.store, launcher, poll_seconds=settings.server.poll_seconds)
                app.state.services.starter = starter
                starting = asyncio.create_task(starter.run_forever())
                web = uvicorn.Server(uvicorn.Config(
                    app, host=host, port=port, lifespan="off", log_config=None, access_log=False,
                    proxy_headers=False,
                ))
                try:
                    await web.serve()  # until SIGINT/SIGTERM
                finally:
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
                    await launcher.aclose()
                    for close in closers:
                        await close()


def _release_stages(settings: Settings, dispatcher: JobDispatcher, client: PlatformClient,
                    publish: bool) -> AfterArtifacts:
    """The release and deployment stages as ``forge run`` runs them, for each run the server
    executes: the commit read from the warm git cache its discovery filled, the deployments by the
    run's author."""
    import asyncio
    import io

    from rich.console import Console

    from forge_core.adapters.git.cache import GitCache
    from forge_core.cli.pipeline import Source, release_stages
    from forge_core.cli.stages import StagesReport

    cache = GitCache.for_worker(settings.worker.cache_dir)

    def after(run: RunSummary, document: DiscoveryDocument, url: str) -> Callable[[], Awaitable[str | None]]:
        async def stages() -> str | None:
            reader, _ = await asyncio.to_thread(cache.open, url, run.commit_sha)
            source = Source(path=reader.git_dir, identity=run.repository, event=document.event)
            return await release_stages(settings, dispatcher, client, document, source, str(run.id),
                                        Console(file=io.StringIO()), StagesReport(), publish=publish,
                                        actor=run.triggered_by)

        return stages

    return after
