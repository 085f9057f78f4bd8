"""The release and deploy tasks of an Argo Workflow (``forge workflow release`` / ``deploy``):
the stages ``forge run`` runs after the artifacts on one machine (:mod:`forge_core.cli.stages`),
here each in its own pod, its jobs dispatched to the fleet's ``release`` and ``deployment``
workers over the bus and every state change made through the API (FORGE_API__URL with the
stage token: roles worker, viewer and deployer).

A pod Argo retries (lost, evicted) does the same work again without doing it twice: the release
job keeps its id (``release-<run>-<project>``), which the worker answers from its stored result,
and a deployment the first attempt created for the release is taken up instead of a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from forge_core.adapters.argo.stages import DeployStageRequest, ReleaseStageRequest
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.git.cache import GitCache
from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.storage import FsspecStore
from forge_core.cli.stages import (
    RELEASE_TIMEOUT,
    Released,
    StageFailed,
    artifact_results,
    auto_deploy_decision,
    committed_at,
    land_deployments,
    release_payload,
)
from forge_core.domain.errors import ConfigurationError
from forge_core.domain.models import Job, JobStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.ports.orchestrator import JobDispatcher
from forge_core.services import errors as api_errors
from forge_core.services import schemas as s
from forge_core.settings import Settings

TAKEN_UP = (s.DeploymentStatus.PENDING, s.DeploymentStatus.ACTIVE)


@dataclass
class StageOutcome:
    """What a stage task did, written as its ``result`` output (the JobResult shape: status,
    output, error) so the platform names a failure's reason as it names a dispatch's."""

    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_result(self, job_id: str) -> dict[str, Any]:
        status = JobStatus.FAILED if self.error else JobStatus.SUCCESS
        return {"job_id": job_id, "status": status.value, "output": self.output, "error": self.error}


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[PlatformClient, JobDispatcher]]:
    if settings.api.url is None or settings.api.token is None:
        raise ConfigurationError(
            "a Workflow's stage task works through the Platform API: set FORGE_API__URL and FORGE_API__TOKEN",
            where="FORGE_API__URL" if settings.api.url is None else "FORGE_API__TOKEN",
        )
    bus = await connect(settings.nats, name="forge-workflow-stage")
    try:
        async with PlatformClient(settings.api.url, settings.api.token.get_secret_value()) as client:
            yield client, NatsDispatcher(bus, settings.nats, FsspecStore.from_settings(settings.storage))
    finally:
        await bus.close()


async def release_stage(settings: Settings, request: ReleaseStageRequest) -> StageOutcome:
    """The project's ``release`` job, from the artifact records the run's artifact tasks left."""
    name = request.project.project.name
    async with connected(settings) as (client, dispatcher):
        records = (await client.get_run(request.run_id)).artifact_records
        try:
            artifacts = artifact_results(records, name)
        except StageFailed as unplaced:
            if request.publish:
                return StageOutcome(error=str(unplaced))
            # as forge run: without --publish a publisher that cannot plan leaves nothing to release
            return StageOutcome({"released": False, "reason": f"{name}: not released — {unplaced.message}"})
        cache = GitCache.for_worker(settings.worker.cache_dir)
        reader, commit = await asyncio.to_thread(cache.open, request.clone_url, request.event.commit)
        payload = release_payload(
            request.project, DiscoveryDocument(event=request.event), identity=request.repository,
            artifacts=artifacts, committed=committed_at(reader.git_dir, commit),
            kubernetes_version=settings.render.kubernetes_version,
        )
        job = Job(id=f"release-{request.run_id}-{name}", type="release", run_id=request.run_id,
                  payload=payload.model_dump(mode="json"))
        result = await dispatcher.dispatch(job, RELEASE_TIMEOUT)
    if result.status is not JobStatus.SUCCESS:
        return StageOutcome(error=f"release {name}: {result.error or result.status.value}")
    out = result.output
    return StageOutcome({"released": True, "project": name, "release_number": int(out["release_number"]),
                         "release_id": str(out["release_id"]), "aliases": list(out.get("aliases", ()))})


async def deploy_stage(settings: Settings, request: DeployStageRequest) -> StageOutcome:
    """The auto-deployment of the run's new releases to the first environment (one ``deployment``
    job per environment: one GitOps commit), as the environments' rules allow."""
    document = request.document()
    not_deployed: list[str] = []
    landed: list[dict[str, Any]] = []
    async with connected(settings) as (client, dispatcher):
        pending: dict[str, list[s.Deployment]] = {}
        for project in request.projects:
            try:
                found = await client.show_release(request.repository, project, request.event.commit)
            except api_errors.NotFound:
                not_deployed.append(f"{project}: no release at this commit")
                continue
            released = Released(project=project, number=found.release_number,
                                aliases=tuple(a.alias for a in found.aliases),
                                image=f"{found.oci_uri}@{found.oci_digest}", release_id=str(found.id))
            decision = auto_deploy_decision(document, released, author=request.author)
            if not decision.allowed:
                not_deployed.append(decision.explain())
                continue
            deployment = await _deployment_of(client, request.repository, found, decision.environment)
            if deployment.status is s.DeploymentStatus.PENDING:
                pending.setdefault(decision.environment, []).append(deployment)
        for environment, deployments in pending.items():
            made = await land_deployments(dispatcher, client, deployments, actor=request.author)
            landed.append({"environment": environment, "gitops_commit": made.gitops_commit,
                           "deployments": list(made.deployments)})
    return StageOutcome({"landed": landed, "not_deployed": not_deployed})


async def _deployment_of(client: PlatformClient, repository: str, release: s.Release, environment: str) -> s.Deployment:
    """The release's deployment to ``environment``: one an earlier attempt of this task created
    (pending or active), else a new pending one."""
    listed = await client.list_deployments(repository, project=release.project, environment=environment)
    for deployment in listed.deployments:
        if deployment.release_id == release.id and deployment.status in TAKEN_UP:
            return deployment
    created = await client.create_deployment(str(release.id), environment, status="pending")
    return s.Deployment.model_validate(created)
