"""Building the Platform API: settings and plugins in, a FastAPI application out.

Start-up (the lifespan) connects to the database and applies migrations, loads or creates the
platform's signing key, starts the outbox sender when a notifier is configured, and, when the
orchestrator is Argo Workflows (``FORGE_ORCHESTRATOR__KIND=argo``), the run starter that submits
each new run's Workflow exactly once across replicas (:mod:`forge_core.api.run_starting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from forge_core import __version__
from forge_core.adapters import structured_logs
from forge_core.adapters.auth import keys
from forge_core.adapters.auth.github import GithubExchange
from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.tokens import TokenVerifier
from forge_core.adapters.bus.cancel import CancelAnnouncer
from forge_core.adapters.bus.local_server import private_server_folder
from forge_core.adapters.db.engine import create_engine, migrate
from forge_core.adapters.db.store import SqlStore
from forge_core.api import errors, ui
from forge_core.api.deps import Services, checked_parameters
from forge_core.api.middleware import BodyLimit, JsonDepthLimit, Observe
from forge_core.api.routers import auth, deployments, logs, releases, runs, system, webhooks
from forge_core.api.routers.system import Metrics
from forge_core.plugin.host import PluginHost
from forge_core.services.outbox import sender_from_settings
from forge_core.services.platform import Platform, Policy
from forge_core.settings import Settings

log = logging.getLogger("forge.api")


async def _sweep_leases(platform: Platform, every: float) -> None:
    """Close the runs whose lease lapsed, every ``every`` seconds (a failing sweep is retried)."""
    while True:
        await asyncio.sleep(every)
        try:
            await platform.close_lapsed_runs()
        except Exception:
            log.exception("closing the runs whose lease lapsed failed; retrying in %g s", every)


def create_app(
    settings: Settings, host: PluginHost, *, start_runs: bool = True, console: bool | None = None
) -> FastAPI:
    """``start_runs`` false: this app never starts runs itself (``forge server`` runs its own
    starter beside it, on its in-process workers). ``console``: serve the web console (None: as
    ``FORGE_API__UI__ENABLED`` says); false for an app no browser can reach, which so never
    imports its pages."""
    structured_logs.configure()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database)
        await migrate(engine)
        store = SqlStore(engine)
        key = keys.platform_key(settings)
        oidc = settings.auth.oidc
        oidc_keys = (
            JwksCache(
                str(oidc.issuer), jwks_url=str(oidc.jwks_url) if oidc.jwks_url else None,
                min_refresh=oidc.jwks_min_refresh_seconds, max_age=oidc.jwks_max_age_seconds,
            )
            if oidc.issuer
            else None
        )
        github_keys = JwksCache(
            str(settings.auth.github.issuer), min_refresh=oidc.jwks_min_refresh_seconds
        )
        verifier = TokenVerifier(settings.auth, key, oidc_keys)
        sender = sender_from_settings(settings.api.notifier, host.registry, store)
        # The workers listen on the configured NATS for cancelled runs, or on the private server.
        private = None if settings.nats.url else private_server_folder(settings.state_dir)
        cancels = CancelAnnouncer(settings.nats, private_server=private)
        app.state.services = Services(
            settings=settings,
            host=host,
            store=store,
            platform=Platform(
                store,
                Policy(settings.api.environments, settings.api.protected_environments),
                host.notify,
            ),
            verifier=verifier,
            github=GithubExchange(settings.auth.github, github_keys, key, verifier.verify),
            sender=sender,
            cancels=cancels,
        )
        in_process = sender is not None and settings.api.notifier.in_process
        task = asyncio.create_task(sender.run_forever()) if sender and in_process else None
        starting = contextlib.AsyncExitStack()
        platform = app.state.services.platform
        await platform.close_lapsed_runs()  # runs left open by a driver that was killed
        sweeping = asyncio.create_task(_sweep_leases(platform, settings.leases.sweep_seconds))
        try:
            if start_runs and settings.orchestrator.kind == "argo":
                from forge_core.api.run_starting import fleet_run_starter

                app.state.services.starter = await starting.enter_async_context(
                    fleet_run_starter(app, settings, store, key))
            yield
        finally:
            await starting.aclose()
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if cancels is not None:
                await cancels.close()
            for cache in (oidc_keys, github_keys):
                if cache:
                    await cache.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Catalyst Forge Platform API",
        version=__version__,
        lifespan=lifespan,
        description="Pipeline runs, releases, deployments and approvals of Catalyst Forge.",
        dependencies=[Depends(checked_parameters)],
    )
    registry = CollectorRegistry()
    app.state.metrics = Metrics(registry)
    errors.install(app)
    for module in (runs, logs, releases, deployments, webhooks, auth, system):
        app.include_router(module.router)
    for plugin_id, router in host.api_routers():
        app.include_router(router, prefix=f"/v1/plugins/{plugin_id}")
    if settings.api.ui.enabled if console is None else console:
        ui.mount(app)
    app.add_middleware(JsonDepthLimit, limit=settings.api.max_json_depth)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    app.add_middleware(Observe, registry=registry)
    return app
