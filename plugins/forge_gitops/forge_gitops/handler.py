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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
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
from forge_gitops.grouping import GroupCommit
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


@dataclass(eq=False)
class _Delivery:
    """One job on its way into a group commit, and what became of it."""

    job: Job
    ctx: JobContext
    payload: DeploymentPayload
    pointers: list[ReleasePointer]
    ids: list[str]
    landed: Landed | None = None
    report_error: ForgeError | None = None


class _EveryStopped:
    """The stop of a batch: set once every job in it is withdrawn (one withdrawn job does not
    hold back the others' commit; it simply lands with them)."""

    def __init__(self, events: Sequence[threading.Event]) -> None:
        self._events = events

    def is_set(self) -> bool:
        return all(event.is_set() for event in self._events)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set() and (left := deadline - time.monotonic()) > 0:
            self._events[0].wait(min(left, 0.05))
        return self.is_set()


def batch_message(batch: Sequence[_Delivery]) -> str:
    """One job's commit message as it always was; several jobs' in one commit: every job's
    subject line (environment, projects, release numbers, actor), then every pointer line."""
    messages = [deployment_message(d.pointers, d.payload.actor, action=d.payload.action) for d in batch]
    if len(messages) == 1:
        return messages[0]
    subjects = [message.splitlines()[0] for message in messages]
    details = [line for message in messages for line in message.splitlines()[2:]]
    return "; ".join(subjects) + "\n\n" + "\n".join(details) + "\n"


class DeploymentHandler:
    """One per worker. Its jobs for one remote land in group commits (``grouping``): racing its
    own threads would only waste attempts; other workers' pushes are what the fetch/re-apply/retry
    is for."""

    def __init__(self, settings: GitOpsSettings | None = None) -> None:
        self._settings = settings
        self._groups: dict[str, GroupCommit[_Delivery]] = {}
        self._guard = threading.Lock()

    def _group(self, settings: GitOpsSettings) -> GroupCommit[_Delivery]:
        url = settings.repository_url()
        with self._guard:
            if url not in self._groups:
                self._groups[url] = GroupCommit(
                    partial(self._land_batch, settings), max_batch=settings.max_batch,
                    linger=settings.batch_linger_seconds)
            return self._groups[url]

    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        payload = parse_payload(job.payload)
        pointers = pointers_of(payload, datetime.now(UTC))
        settings = self._settings or load_settings()
        reporter = ctx.deployments
        ids, created = self._pending(payload, reporter)
        delivery = _Delivery(job, ctx, payload, pointers, ids)
        try:
            member = self._group(settings).submit(delivery, frozenset(str(p.path) for p in pointers))
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
        if delivery.report_error is not None:  # landed, but the API did not hear it: the redelivery reports
            raise delivery.report_error
        landed = delivery.landed
        assert landed is not None
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output={
            "gitops_commit": landed.commit,
            "created": landed.created,
            "attempts": landed.attempts,
            "batch": member.batch_size,
            "environment": payload.environment,
            "paths": [str(p.path) for p in pointers],
            "deployments": ids,
            "repository": redact_url(settings.repository_url()),
            "branch": settings.branch,
        })

    def _land_batch(self, settings: GitOpsSettings, batch: Sequence[_Delivery]) -> None:
        """Land every delivery's pointers in one commit, then report each active, in landing
        order (still in the turn, so a later commit of the same pointer reports after)."""
        lead = batch[0].ctx
        stop: threading.Event | _EveryStopped = lead.stop if len(batch) == 1 else _EveryStopped(
            [d.ctx.stop for d in batch])

        def log(line: str) -> None:
            for delivery in batch:
                delivery.ctx.log(line)

        def heartbeat() -> None:
            for delivery in batch:
                delivery.ctx.heartbeat()

        secret = self._credential(settings, lead)
        with git_auth(settings, secret) as auth:
            repository = GitOpsRepository(settings, auth, lead.cache_dir / "gitops")
            pointers = [pointer for delivery in batch for pointer in delivery.pointers]
            landed = repository.publish(pointers, batch_message(batch), stop=stop, log=log, heartbeat=heartbeat)
        for delivery in batch:
            delivery.landed = landed
            reporter = delivery.ctx.deployments
            if reporter is None:
                continue
            try:
                for deployment_id in delivery.ids:
                    reporter.set_deployment_status(deployment_id, "active", gitops_commit_sha=landed.commit)
            except ForgeError as error:
                delivery.report_error = error

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
