"""The messages of the job bus: versioned envelopes around :class:`Job` and :class:`JobResult`,
and the payload of a ``ci`` job (one task of a run's plan).

Envelopes carry ``version`` so workers and dispatchers of different releases can tell what they
read; a reader rejects versions it does not know (the message is dead-lettered, never guessed at).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.models import Job, JobResult, JobStatus, Model, ProjectRef, PublishedLocation
from forge_core.domain.plan import ReleaseDecision
from forge_core.domain.run_plan import ArtifactPlan, PhasePlan, RunPlan, StepPlan, TaskPlan

__all__ = [  # the plan's models live in run_plan; their old home keeps working
    "ENVELOPE_VERSION", "JOB_TYPES", "ArtifactJobPayload", "ArtifactResult", "ArtifactSource", "CiJobPayload",
    "JobEnvelope", "PhasePlan", "ReleaseJobPayload", "ResultEnvelope", "RunPlan",
    "SourceRef", "StepPlan", "TaskPlan", "artifact_token", "failure_target", "subject_token",
]

ENVELOPE_VERSION: Literal[1] = 1

JOB_TYPES: tuple[str, ...] = ("discovery", "ci", "artifact", "release", "deployment")
"""The job types of the spec; each has its stream, subject, consumer and ack wait."""

_TOKEN = re.compile(r"^[A-Za-z0-9_:-]{1,128}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def subject_token(value: str, field: str) -> str:
    """``value`` if it can be one token of a NATS subject (ids of runs, tasks, artifacts)."""
    if not _TOKEN.match(value):
        raise ConfigurationError(
            f"{value!r} cannot be used in a subject: use letters, digits, '_', '-' or ':' (at most 128)",
            where=field,
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


class JobEnvelope(Model):
    """A job on the bus. ``reply_to`` is the dispatcher's inbox (JetStream uses the message's own
    reply subject for its acks, so the inbox travels inside the envelope)."""

    version: Literal[1] = ENVELOPE_VERSION
    job: Job
    reply_to: str | None = None
    published_at: datetime = Field(default_factory=_now)


class ResultEnvelope(Model):
    """A job's result on its way back: inline, or as a key in object storage when it is large."""

    version: Literal[1] = ENVELOPE_VERSION
    job_id: str
    status: JobStatus
    result: JobResult | None = None
    result_ref: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ResultEnvelope:
        if (self.result is None) == (self.result_ref is None):
            raise ValueError("a result envelope holds either result or result_ref")
        return self


class PlanModel(BaseModel):
    """Payload parts as a reader takes them: extra fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class SourceRef(PlanModel):
    """Where a task's code is: a git repository (a local path or a URL) and the commit."""

    repository: str
    commit: str


class CiJobPayload(PlanModel):
    """The payload of a ``ci`` job: one task of the recorded plan (as the API returned it), its
    source, extra step environment."""

    task: TaskPlan
    source: SourceRef
    env: dict[str, str] = Field(default_factory=dict)


class ArtifactSource(SourceRef):
    """The commit an artifact is built from, with the branch and tag it was run for, and the
    platform's name of the repository (``owner/name``: tracking images are named after it)."""

    branch: str | None = None
    tag: str | None = None
    identity: str | None = None


class ArtifactJobPayload(PlanModel):
    """The payload of an ``artifact`` job: one planned artifact of a releasing project (as the
    run's plan holds it), its source, and whether to publish (else every publisher plans only).
    ``artifact_id`` names it in the job's subject (``pipeline.artifacts.<run>.<artifact_id>``)."""

    artifact: ArtifactPlan
    source: ArtifactSource
    publish: bool = False
    version: str | None = None
    """The release version discovery decided (``api/v1.2.0`` → ``1.2.0``), for the publishers' tags."""
    env: dict[str, str] = Field(default_factory=dict)
    artifact_id: str = ""

    @model_validator(mode="after")
    def _named(self) -> ArtifactJobPayload:
        if not self.artifact_id:
            object.__setattr__(self, "artifact_id", artifact_token(self.artifact.project.name, self.artifact.spec.name))
        return self


def artifact_token(project: str, artifact: str) -> str:
    """A subject token for one artifact of a project: readable, and unique even where names
    differ only in characters a subject cannot hold (``.``)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", f"{project}:{artifact}".replace(":", "__"))[:100]
    digest = hashlib.sha256(f"{project}/{artifact}".encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


class ArtifactResult(PlanModel):
    """One artifact as the artifact stage leaves it: its tracking image (reference and manifest
    digest) and where it was published, the primary location (its first publisher's) first."""

    name: str
    type: str
    tracking: str
    tracking_digest: str
    published: tuple[PublishedLocation, ...] = Field(min_length=1)

    @property
    def primary(self) -> PublishedLocation:
        return self.published[0]


class ReleaseJobPayload(PlanModel):
    """The payload of a ``release`` job: one project of one commit to release.

    ``committed_at`` is the commit's time (the Release image's only timestamp, so a rebuild has the
    same digest); ``trigger`` the discovery's release decision for the project; ``resources`` its
    deploy resources as discovery gives them; ``artifacts`` the artifact stage's results;
    ``aliases`` the project's custom alias templates (``release.aliases``, expanded by the job:
    :mod:`forge_core.domain.alias_templates`; plain names are themselves); ``kubernetes_version``
    the version the renderer validates against (the platform's ``render.kubernetes_version``;
    None: the renderer's default).
    """

    repository: str
    project: ProjectRef
    commit: str
    committed_at: datetime
    branch: str | None = None
    tag: str | None = None
    trigger: ReleaseDecision
    resources: tuple[dict[str, Any], ...] = ()
    artifacts: tuple[ArtifactResult, ...] = ()
    aliases: tuple[str, ...] = ()
    kubernetes_version: str | None = None

    @field_validator("commit")
    @classmethod
    def _full_commit(cls, value: str) -> str:
        if not _COMMIT.match(value):
            raise ValueError(f"a release is of a full 40-hex commit SHA in lower case, got {value!r}")
        return value

    @field_validator("committed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("committed_at needs a time zone")
        return value

    @model_validator(mode="after")
    def _unique_artifacts(self) -> ReleaseJobPayload:
        names = [artifact.name for artifact in self.artifacts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"artifact names must be unique, {', '.join(twice)} appear more than once")
        return self


def failure_target(job: Job) -> tuple[Literal["task", "run"], str] | None:
    """Which entity a job's failure marks failed when nobody else can say: a ``ci`` job's task,
    a discovery job's run; other types are reported by whoever drives them."""
    task = job.payload.get("task")
    if isinstance(task, dict) and isinstance(task.get("id"), str):
        return "task", task["id"]
    if job.type == "discovery":
        return "run", job.run_id
    return None


def attempt_job_id(job_id: str, attempt: int) -> str:
    """The id of a run's job on the run's ``attempt``: unchanged on the first, suffixed on a
    re-run's, so a re-run's job is a new job (results are stored per job id)."""
    return job_id if attempt <= 1 else f"{job_id}-attempt{attempt}"
