"""The typed interfaces each family's implementations satisfy (the contexts they receive are in
:mod:`forge_core.ports.contexts`, re-exported here).

A registered factory, called with no arguments (a secret provider's: with its settings), returns
an object with the family's one method.
Checked with ``isinstance`` (the protocols are runtime-checkable) when an implementation is
created, so a plugin with a misnamed method fails at first use with its name in the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from forge_core.ports.contexts import ExecutionContext, JobContext

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
        SecretRef,
        SourceEvent,
        StepOutcome,
        StepSpec,
        TriggerDecision,
        TriggerSpec,
    )


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
class PlanningPublisher(Publisher, Protocol):
    """A publisher that can also say where an artifact would go without contacting anything
    (``forge run`` without ``--publish``): validate the target's settings, compute the reference,
    tags or key, and return the location ``publish`` would return (``metadata["planned"]`` true).
    Optional: a publisher without ``plan`` is reported "cannot plan; use --publish"."""

    def plan(self, artifact: ProducedArtifact, target: PublishTarget) -> PublishedLocation: ...


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


@runtime_checkable
class SecretProvider(Protocol):
    """Resolves a secret reference to its value. Created once per worker with its own settings
    (``factory(options)``, the provider's section of ``FORGE_SECRETS__<NAME>__*``)."""

    def resolve(self, ref: SecretRef) -> str:
        """The value ``ref`` names (``ref.path`` is the CUE ``secretName``; ``ref.key`` selects
        a field). Raise SecretError naming the provider, the secret name and the key — never a
        value — when it cannot."""
        ...


def __getattr__(name: str) -> object:
    if name == "PROTOCOLS":  # deprecated table (family key -> protocol), derived from the families
        import warnings

        from forge_core.plugin.family import Family

        warnings.warn("PROTOCOLS is deprecated: use Family.<NAME>.protocol", DeprecationWarning, stacklevel=2)
        return {str(f): f.protocol for f in Family if f.protocol is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ExecutionContext",
    "JobContext",
    "JobHandler",
    "Notifier",
    "NotifierOptions",
    "PlanningPublisher",
    "Producer",
    "Publisher",
    "ReleaseTrigger",
    "Renderer",
    "SecretProvider",
    "StepRunner",
]
