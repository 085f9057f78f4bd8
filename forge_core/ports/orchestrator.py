"""The orchestration contract: run a plan's phase groups through dispatched jobs.

Two implementations fit it: the embedded orchestrator (forge_core.services.orchestrator, for one
machine) and, later, one that generates an Argo Workflow whose tasks are ``forge dispatch``
processes. Either way every task travels the bus as a ``ci`` job and every state change goes
through the RunRecorder port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from forge_core.domain.jobs import ArtifactSource, SourceRef
from forge_core.domain.models import Job, JobResult, RunStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.domain.run_plan import ArtifactPlan


class JobDispatcher(Protocol):
    """Publishes a job with a unique reply inbox and waits for its result.

    Raises JobTimeoutError when no reply comes within ``timeout`` seconds and MessagingError when
    the bus cannot be used; a job that ran and failed is a JobResult with status ``failed``.
    Cancelling the call withdraws the job if no worker has taken it yet.
    """

    async def dispatch(self, job: Job, timeout: float) -> JobResult: ...


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, why when it did not succeed, and the phases that failed without stopping
    it (phases that are not required)."""

    status: RunStatus
    error: str | None = None
    failed_task: str | None = None
    failed_phases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactStage:
    """The artifact stage after the phase groups: the artifacts of the releasing projects, each
    an ``artifact`` job; ``publish`` false means every publisher only plans. ``versions`` holds
    each releasing project's release version (project name → version)."""

    artifacts: tuple[ArtifactPlan, ...]
    source: ArtifactSource
    publish: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    then: Callable[[], Awaitable[str | None]] | None = None
    """The stages after the artifacts (release, deployment), run when every artifact succeeded and
    before the run is recorded finished; it returns why they failed (the run fails), else None."""
    document: DiscoveryDocument | None = None
    """The run's discovery document, for an orchestrator that runs the release and deployment
    stages itself (the Argo Workflow's release and deploy tasks) instead of ``then``."""
    author: str | None = None
    """Who triggered the run (the auto-deployment rules judge them)."""
    attempt: int = 1
    """The run's attempt: a re-run's artifact jobs are new jobs, never answered from an earlier
    attempt's stored results."""


class Orchestrator(Protocol):
    async def execute(
        self,
        run_id: str,
        plan: dict[str, Any],
        source: SourceRef,
        *,
        cancel: asyncio.Event | None = None,
        artifacts: ArtifactStage | None = None,
    ) -> RunOutcome:
        """Run ``plan`` (a recorded :class:`~forge_core.domain.run_plan.RunPlan` as JSON, with ids)
        for the commit in ``source``, then, when every required phase succeeded, the artifact
        stage; setting ``cancel`` stops the run (status ``cancelled``)."""
        ...
