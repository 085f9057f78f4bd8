"""The typed interfaces each family's implementations satisfy.

A registered factory, called with no arguments, returns an object with the family's one method.
Checked with ``isinstance`` (the protocols are runtime-checkable) when an implementation is
created, so a plugin with a misnamed method fails at first use with its name in the error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from forge_core.domain.models import (
        ArtifactSpec,
        CommitStatus,
        Job,
        JobResult,
        ProducedArtifact,
        ProjectRef,
        PublishedLocation,
        PublishTarget,
        RenderedResources,
        RenderRequest,
        SourceEvent,
        StepOutcome,
        StepSpec,
        TriggerDecision,
        TriggerSpec,
    )
    from forge_core.plugin.registry import Registry


def _discard(_line: str) -> None:
    return None


@dataclass(frozen=True)
class ExecutionContext:
    """Where and how a step, producer or publisher runs.

    ``secrets`` hold resolved values for the duration of the call; whoever stores ``log`` output
    masks them. ``timeout`` is in seconds (None: no limit of the caller's). ``stop`` is set when
    the work is withdrawn (its job released or cancelled): stop at once, return a cancelled outcome.
    """

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = _discard
    timeout: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class JobContext:
    """What a worker gives a job handler: a cache folder, a log sink, the loaded registry, a
    heartbeat to call while a long job runs (it extends the job's ack deadline), and ``stop``,
    set when the worker withdraws the job (shutdown past its grace, cancellation)."""

    cache_dir: Path
    registry: Registry
    log: Callable[[str], None] = _discard
    heartbeat: Callable[[], None] = lambda: None
    services: Mapping[str, object] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


@runtime_checkable
class StepRunner(Protocol):
    """Runs one step of a phase (the step's ``action`` names the runner)."""

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome: ...


@runtime_checkable
class Producer(Protocol):
    """Builds an artifact of one of the types it declared."""

    def produce(
        self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext
    ) -> ProducedArtifact: ...


@runtime_checkable
class Publisher(Protocol):
    """Pushes a produced artifact to one target (a registry, an index, a bucket, a release)."""

    def publish(
        self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext
    ) -> PublishedLocation: ...


@runtime_checkable
class JobHandler(Protocol):
    """Executes one job type (discovery, ci, artifact, release, deployment, …)."""

    def handle(self, job: Job, ctx: JobContext) -> JobResult: ...


@runtime_checkable
class ReleaseTrigger(Protocol):
    """Decides whether an event releases a project; always says why."""

    def evaluate(
        self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef
    ) -> TriggerDecision: ...


@runtime_checkable
class Renderer(Protocol):
    """Turns a project's deploy resources into manifests."""

    def render(self, request: RenderRequest) -> RenderedResources: ...


@dataclass(frozen=True)
class NotifierOptions:
    """The operator's settings for the selected notifier; ``token`` is a secret (never log it)."""

    options: Mapping[str, object] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)


@runtime_checkable
class Notifier(Protocol):
    """Delivers a commit status; raises on any failure so the outbox retries it later."""

    def send_commit_status(self, status: CommitStatus, options: NotifierOptions) -> None: ...


def __getattr__(name: str) -> object:
    if name == "PROTOCOLS":  # deprecated table (family key -> protocol), derived from the families
        import warnings

        from forge_core.plugin.family import Family

        warnings.warn("PROTOCOLS is deprecated: use Family.<NAME>.protocol", DeprecationWarning, stacklevel=2)
        return {str(f): f.protocol for f in Family if f.protocol is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
