"""The domain types the plugin families take and return.

Small and stable on purpose: plugins are built against them, so fields may be added (with
defaults) but never removed or renamed within a major version.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    """One commit of one repository and how it arrived (the input of discovery and triggers)."""

    repository: str
    commit: str
    branch: str | None = None
    tag: str | None = None
    kind: EventKind = EventKind.PUSH
    pull_request: int | None = None
    tagging_strategy: str = "monorepo"
    manual_projects: tuple[str, ...] = ()


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


class StepSpec(Model):
    """One step of a project's phase: which runner (``action``) runs which ``target``."""

    name: str
    action: str
    target: str = ""
    timeout: timedelta | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    """Environment variable name → the secret it holds (resolved into ``ExecutionContext.secrets``)."""


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


class SecretRef(Model):
    """A reference to a secret held elsewhere (never its value)."""

    provider: str = "env"
    path: str
    key: str | None = None


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


class RenderRequest(Model):
    """A project's deploy resources and what they reference, to be turned into manifests."""

    repository: str
    project: str
    commit: str
    resources: dict[str, Any]
    artifacts: dict[str, str] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)


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
