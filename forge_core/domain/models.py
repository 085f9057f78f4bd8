"""The domain types the plugin families take and return.

Small and stable on purpose: plugins are built against them, so fields may be added (with
defaults) but never removed or renamed within a major version.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Model(BaseModel):
    """Base of the domain models: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventKind(enum.StrEnum):
    """What made the platform look at a commit."""

    PUSH = "push"
    PULL_REQUEST = "pull_request"
    TAG = "tag"
    MANUAL = "manual"


class SourceEvent(Model):
    """One commit of one repository and how it arrived (the input of discovery and triggers).

    ``tag`` is the tag the event is about; ``tags`` every release tag on the commit (one run per
    commit, ever, so a commit tagged ``api/v1.2.0`` and ``web/v0.3.0`` releases both projects).
    """

    repository: str
    commit: str
    branch: str | None = None
    tag: str | None = None
    kind: EventKind = EventKind.PUSH
    pull_request: int | None = None
    tagging_strategy: str = "monorepo"
    manual_projects: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def all_tags(self) -> tuple[str, ...]:
        """The event's tag and the commit's other release tags, each once, the event's first."""
        return tuple(dict.fromkeys((*((self.tag,) if self.tag else ()), *self.tags)))


class ProjectRef(Model):
    """A project of a monorepo: its name and its folder relative to the repository root."""

    name: str
    path: str


class TriggerSpec(Model):
    """One entry of a project's ``release.on``: the trigger ``type`` and its settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class TriggerDecision(Model):
    """Whether a trigger fires for an event, and why (recorded for every project)."""

    fired: bool
    reason: str
    trigger: str = ""


class SecretRef(Model):
    """A reference to a secret held elsewhere (never its value)."""

    provider: str = "env"
    path: str
    key: str | None = None


class StepRetries(Model):
    """When a failed step runs again: at most ``attempts`` more times, ``delay`` apart; with
    ``filters``, only when a line of the failed attempt's output matches one of these regular
    expressions (Python syntax, matched anywhere in the line). The Earthly retries of the earlier
    Go Catalyst Forge, for every step runner."""

    attempts: int = Field(default=0, ge=0, le=100)
    delay: timedelta = Field(default=timedelta(seconds=10), ge=timedelta(0))
    filters: tuple[str, ...] = ()

    @field_validator("filters")
    @classmethod
    def _compiles(cls, filters: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in filters:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"retry filter {pattern!r} is not a regular expression: {exc}") from None
        return filters

    def matches(self, line: str) -> bool:
        """Whether a line of a failed attempt's output matches one of the filters."""
        return any(re.search(pattern, line) for pattern in self.filters)


class StepSpec(Model):
    """One step of a project's phase: which runner (``action``) runs which ``target``.

    ``settings`` are the runner's own (for ``earthly``: ``args``, ``platforms``, …), exactly as
    written in CUE; ``secrets`` name the step's environment variables and the secret each comes
    from (references: the worker resolves them); ``retries`` say when a failure runs again."""

    name: str
    action: str
    target: str = ""
    timeout: timedelta | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    retries: StepRetries = Field(default_factory=StepRetries)


class StepStatus(enum.StrEnum):
    """Status words follow the API reference (``success``, not ``succeeded``)."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class StepOutcome(Model):
    """What a step runner reports after running one step."""

    status: StepStatus
    exit_code: int | None = None
    duration_seconds: float = 0.0
    message: str = ""


class ArtifactSpec(Model):
    """One artifact a project declares: its ``type``, producer kind and settings, publishers."""

    name: str
    type: str
    producer: str
    producer_settings: dict[str, Any] = Field(default_factory=dict)
    publishers: tuple[str, ...] = ()


class ProducedArtifact(Model):
    """An artifact a producer made, ready to publish."""

    name: str
    type: str
    project: str
    commit: str
    files: tuple[Path, ...] = ()
    reference: str | None = None
    digest: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class PublishTarget(Model):
    """A named publisher from ``repo.cue``: its ``type`` and settings, credentials as references."""

    name: str
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, SecretRef] = Field(default_factory=dict)


class PublishedLocation(Model):
    """Where a publisher put an artifact."""

    publisher: str
    type: str
    uri: str
    digest: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Job(Model):
    """A unit of work for a job handler (the payload of the versioned job envelope)."""

    id: str
    type: str
    run_id: str
    payload: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 1


class JobStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


class JobResult(Model):
    """What a job handler returns; it travels back to the dispatcher."""

    job_id: str
    status: JobStatus
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ArtifactReference(Model):
    """What a release knows of one artifact, for the ``#artifact["NAME"].FIELD`` references.

    ``published`` lists its published locations, the primary (the artifact's first publisher)
    first; ``tracking`` is its tracking image and ``tracking_digest`` that image's manifest digest.
    """

    published: tuple[PublishedLocation, ...] = ()
    tracking: str | None = None
    tracking_digest: str | None = None


class RenderRequest(Model):
    """A project's deploy resources and what they reference, to be turned into manifests.

    ``artifact_references`` (by artifact name) is what references resolve from; ``artifacts``,
    flat strings keyed ``NAME.FIELD`` or ``NAME``, is the older form and is still read where a
    name has no structured reference. ``kubernetes_version`` (``major.minor``; the platform passes
    its ``render.kubernetes_version`` setting) is the version whose schemas built-in kinds must
    meet; None leaves it to the renderer.
    """

    repository: str
    project: str
    commit: str
    resources: dict[str, Any]
    artifacts: dict[str, str] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    artifact_references: dict[str, ArtifactReference] = Field(default_factory=dict)
    kubernetes_version: str | None = None


class RenderedResources(Model):
    """Rendered manifests, in a stable order, and their YAML text."""

    manifests: tuple[dict[str, Any], ...]
    text: str


class RunStatus(enum.StrEnum):
    """Status of runs, phases, tasks and steps, as the API reports them."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class PipelineRunInfo(Model):
    """A pipeline run as the lifecycle hooks see it."""

    id: str
    repository: str
    commit: str
    status: RunStatus
    branch: str | None = None
    tag: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ReleaseInfo(Model):
    """A release as the lifecycle hooks see it."""

    id: str
    repository: str
    project: str
    number: int
    commit: str
    aliases: tuple[str, ...] = ()
    oci_uri: str | None = None


class DeploymentInfo(Model):
    """A deployment as the lifecycle hooks see it."""

    id: str
    environment: str
    repository: str
    project: str
    release_id: str
    status: str


class CommitStatus(Model):
    """A status shown on a commit where the repository is hosted, one per run status change."""

    repository: str
    commit_sha: str
    state: str = Field(description="pending, success, failure or error (GitHub's words).")
    context: str
    description: str = ""
    target_url: str | None = None
    run_id: str


def repository_key(repository: str) -> str:
    """What repository names compare by: GitHub ignores case in ``owner/name`` (ASCII names)."""
    return repository.lower()


def same_repository(one: str, other: str) -> bool:
    return repository_key(one) == repository_key(other)
