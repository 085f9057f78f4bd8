"""The ``deployment`` job handler: one GitOps commit of the ReleasePointers of one or more
projects for one environment, all or none, and the deployments' states through the API.

Payload::

    {"environment": "dev", "actor": "alice", "action": "deploy",
     "deployments": [{"repository": "acme/shop", "project": "api", "release_commit": "<40 hex>",
                      "release_number": 7, "release_id": "<uuid>", "deployment_id": "<uuid>"?}, …]}

A deployment without ``deployment_id`` is created ``pending`` through the API when the job
starts (a dispatcher that created it already passes its id; a redelivery then reports the same
ids again). When the commit lands every deployment becomes ``active`` with the GitOps commit (the
previous active one superseded); when the push gives up every one becomes ``failed`` with the
reason. A withdrawn job (``ctx.stop``) leaves the payload's pending for its redelivery (the ones
it created itself fail: the redelivery creates its own); a report that
cannot reach the API after the commit landed fails the job, and the redelivery finds the
pointers in place (no second commit) and reports again. Without ``JobContext.deployments`` (no
Platform API: a local run) only the commit is made.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from forge_core.sdk import (
    BlockingDeploymentReporter,
    ConfigurationError,
    ForgeError,
    GitOpsError,
    Job,
    JobContext,
    JobResult,
    JobStatus,
    ReleasePointer,
    WorkWithdrawn,
    deployment_message,
    redact_url,
)
from forge_gitops.credentials import git_auth
from forge_gitops.repository import GitOpsRepository, Landed
from forge_gitops.settings import GitOpsSettings, load_settings

Commit = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
OneLine = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\r\n]+$")]


class PointerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository: OneLine
    project: OneLine
    release_commit: Commit
    release_number: int = Field(ge=1)
    release_id: OneLine
    deployment_id: OneLine | None = None


class DeploymentPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: OneLine
    actor: OneLine
    action: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")] = "deploy"
    deployments: list[PointerRequest] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_project_once(self) -> DeploymentPayload:
        seen: set[tuple[str, str]] = set()
        for entry in self.deployments:
            key = (entry.repository, entry.project)
            if key in seen:
                raise ValueError(f"{entry.repository} {entry.project} is named twice; one commit deploys it once")
            seen.add(key)
        return self


def parse_payload(payload: dict[str, Any]) -> DeploymentPayload:
    try:
        return DeploymentPayload.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ConfigurationError(f"invalid deployment job: {first['msg']}", where=where) from None


def pointers_of(payload: DeploymentPayload, now: datetime) -> list[ReleasePointer]:
    pointers = []
    for index, entry in enumerate(payload.deployments):
        try:
            pointers.append(ReleasePointer(
                environment=payload.environment, repository=entry.repository, project=entry.project,
                release=entry.release_commit, release_number=entry.release_number,
                deployed_by=payload.actor, deployed_at=now,
            ))
        except GitOpsError as error:
            raise ConfigurationError(f"invalid deployment job: {error.message}",
                                     where=f"payload.deployments[{index}].{error.where}") from None
        except ValueError as error:  # pydantic's ValidationError
            raise ConfigurationError(f"invalid deployment job: {error}",
                                     where=f"payload.deployments[{index}]") from None
    return pointers


class DeploymentHandler:
    """One per worker. Its jobs take turns per remote (a lock per URL): racing its own threads
    would only waste attempts; other workers' pushes are what the fetch/re-apply/retry is for."""

    def __init__(self, settings: GitOpsSettings | None = None) -> None:
        self._settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _turn(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        payload = parse_payload(job.payload)
        pointers = pointers_of(payload, datetime.now(UTC))
        settings = self._settings or load_settings()
        reporter = ctx.deployments
        ids, created = self._pending(payload, reporter)
        url = settings.repository_url()
        with self._turn(url):  # reported in the order they landed, as far as this worker goes
            try:
                landed = self._land(settings, ctx, pointers, payload)
            except WorkWithdrawn as withdrawn:
                # Released for redelivery: the payload's deployments stay pending for it; the ones
                # this delivery made would be made again, so they end here.
                if reporter is not None:
                    for deployment_id in created:
                        reporter.set_deployment_status(deployment_id, "failed", reason=str(withdrawn))
                raise
            except ForgeError as error:
                if reporter is not None:
                    for deployment_id in ids:
                        reporter.set_deployment_status(deployment_id, "failed", reason=str(error)[:4000])
                return JobResult(job_id=job.id, status=JobStatus.FAILED, error=str(error),
                                 output={"deployments": ids, "environment": payload.environment})
            if reporter is not None:
                for deployment_id in ids:
                    reporter.set_deployment_status(deployment_id, "active", gitops_commit_sha=landed.commit)
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output={
            "gitops_commit": landed.commit,
            "created": landed.created,
            "attempts": landed.attempts,
            "environment": payload.environment,
            "paths": [str(p.path) for p in pointers],
            "deployments": ids,
            "repository": redact_url(url),
            "branch": settings.branch,
        })

    def _land(self, settings: GitOpsSettings, ctx: JobContext, pointers: list[ReleasePointer],
              payload: DeploymentPayload) -> Landed:
        """The pointer commit, landed; a ForgeError when it did not (git's messages are masked
        where they are read, in the repository)."""
        secret = self._credential(settings, ctx)
        with git_auth(settings, secret) as auth:
            repository = GitOpsRepository(settings, auth, ctx.cache_dir / "gitops")
            message = deployment_message(pointers, payload.actor, action=payload.action)
            return repository.publish(pointers, message, stop=ctx.stop, log=ctx.log, heartbeat=ctx.heartbeat)

    @staticmethod
    def _pending(
        payload: DeploymentPayload, reporter: BlockingDeploymentReporter | None
    ) -> tuple[list[str], list[str]]:
        """The deployments' ids, each created pending through the API unless the payload has it;
        and the ones created here."""
        ids: list[str] = []
        created: list[str] = []
        try:
            for entry in payload.deployments:
                if entry.deployment_id is not None:
                    ids.append(entry.deployment_id)
                elif reporter is not None:
                    made = reporter.create_deployment(entry.release_id, payload.environment, status="pending")
                    ids.append(str(made["id"]))
                    created.append(ids[-1])
        except ForgeError as error:  # all or none: the ones made for this job do not stay pending
            if reporter is not None:
                for deployment_id in created:
                    reporter.set_deployment_status(deployment_id, "failed", reason=f"not deployed: {error}"[:4000])
            raise
        return ids, created

    @staticmethod
    def _credential(settings: GitOpsSettings, ctx: JobContext) -> str | None:
        if settings.credentials is None:
            return None
        if ctx.secrets is None:
            raise ConfigurationError("GitOps credentials are configured but the worker gave no secret resolver",
                                     where="FORGE_GITOPS__CREDENTIALS")
        resolved = ctx.secrets.resolve({"credential": settings.credentials}, owner="the GitOps repository")
        return resolved.values["credential"]
