"""Health, readiness, metrics and the loaded plugins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import BaseModel

from forge_core.api.deps import App, Database, Outbox, Reader, Runs
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.api.scope import EVERY_REPOSITORY, REPOSITORY_FREE

router = APIRouter(responses=ERROR_RESPONSES)


class Health(BaseModel):
    status: str


class PluginList(BaseModel):
    plugins: list[dict[str, Any]]


@router.get("/healthz", response_model=Health, tags=["health"], openapi_extra=REPOSITORY_FREE)
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    tags=["health"],
    responses={503: {"model": Health}},
    openapi_extra=REPOSITORY_FREE,
)
async def readyz(database: Database) -> Any:
    """Readiness: the database answers."""
    try:
        await database.ping()
    except Exception:  # any failure to reach the database means not ready
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return Health(status="ok")


@router.get(
    "/v1/plugins", response_model=PluginList, tags=["plugins"], openapi_extra=REPOSITORY_FREE
)
async def plugins(app: App, _: Reader) -> PluginList:
    """What this server loaded: plugins, versions, hooks, names registered, failures."""
    return PluginList(plugins=app.host.describe())


class Metrics:
    """Gauges read from the database when scraped, beside the request histogram."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.runs = Gauge(
            "forge_pipeline_runs", "Pipeline runs by status", ["status"], registry=registry
        )
        self.outbox = Gauge(
            "forge_outbox_pending", "Notifications not yet delivered", registry=registry
        )


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    openapi_extra=EVERY_REPOSITORY,
)
async def metrics(request: Request, runs: Runs, outbox: Outbox, _: Reader) -> Response:
    """Prometheus metrics: request latency by route, run counts by status, outbox backlog (of
    every repository, so not open to a repository's token)."""
    gauges: Metrics = request.app.state.metrics
    for status, count in (await runs.run_counts()).items():
        gauges.runs.labels(status).set(count)
    gauges.outbox.set(await outbox.outbox_pending())
    return Response(generate_latest(gauges.registry), media_type=CONTENT_TYPE_LATEST)
