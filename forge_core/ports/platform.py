"""The port through which workers and orchestrators record state in the Platform API.

Everything that changes a run (its plan, and the status of runs, phases, tasks and steps) goes
through the API, which keeps the audit trail; the HTTP implementation lives in the adapters.
Endpoints (``/v1``): ``POST /runs/{id}/plan``, ``PUT /runs/{id}/status``,
``PUT /phases/{id}/status``, ``PUT /tasks/{id}/status``, ``PUT /steps/{id}/status``, and the
artifact job's record of each artifact, ``PUT``/``GET /runs/{id}/artifacts/{project}/{artifact}``
(a :class:`~forge_core.services.schemas.ArtifactRecordUpdate` as JSON; the GET answers None when
nothing was recorded yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

CONFLICT = "resource_conflict"
"""The ForgeError code a recorder raises when a change contradicts the recorded state: a final
status is final (a task a worker already finished cannot become cancelled), and a cancelled run
takes no more changes."""


NOT_FOUND = "resource_not_found"
"""The ForgeError code of an API answer saying the entity named does not exist."""


class RunRecorder(Protocol):
    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        """Store the phases → tasks → steps of a run (from discovery); returns them with their ids."""
        ...

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None: ...

    async def set_phase_status(self, phase_id: str, status: str) -> None: ...

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None: ...

    async def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None: ...

    async def record_artifact(
        self, run_id: str, project: str, artifact: str, record: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class StatusChange:
    """One status change of a task or a step, as its ``set_task_status``/``set_step_status``
    call says it (``error`` is a task's; ``exit_code`` and ``logs_key`` a step's)."""

    kind: Literal["task", "step"]
    entity_id: str
    status: str
    error: str | None = None
    exit_code: int | None = None
    logs_key: str | None = None


@runtime_checkable
class StatusBatchRecorder(Protocol):
    """A RunRecorder that can record several task and step changes at once (one API call, one
    transaction): all applied in order, or none; the first refused change raises as its own call
    would (a :data:`CONFLICT` for a final status). Optional: callers fall back to one call each."""

    async def record_statuses(self, changes: Sequence[StatusChange]) -> None: ...


class BlockingRunRecorder(Protocol):
    """The RunRecorder port for synchronous code (job handlers on a worker's threads): each call
    waits until the change is recorded."""

    def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]: ...

    def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None: ...

    def set_phase_status(self, phase_id: str, status: str) -> None: ...

    def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None: ...

    def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None: ...

    def record_artifact(self, run_id: str, project: str, artifact: str, record: dict[str, Any]) -> dict[str, Any]: ...

    def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None: ...

@runtime_checkable
class DeploymentReporter(Protocol):
    """Deployment states through the API (``/v1/deployments``): what the deployment job records.
    Deployments come back as the API's JSON objects (id, status, gitops_commit_sha, reason, …)."""

    async def create_deployment(
        self, release_id: str, environment: str, *, status: str = "pending"
    ) -> dict[str, Any]: ...

    async def set_deployment_status(
        self,
        deployment_id: str,
        status: str,
        *,
        gitops_commit_sha: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]: ...


class BlockingDeploymentReporter(Protocol):
    """The DeploymentReporter port for synchronous job handlers: each call waits for the API."""

    def create_deployment(
        self, release_id: str, environment: str, *, status: str = "pending"
    ) -> dict[str, Any]: ...

    def set_deployment_status(
        self,
        deployment_id: str,
        status: str,
        *,
        gitops_commit_sha: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]: ...


@runtime_checkable
class ReleaseApi(Protocol):
    """The release calls of the Platform API a release job makes; bodies and answers are the API's
    JSON (``ReleaseCreate``, ``Release``). Errors are ForgeErrors with the API's code
    (:data:`CONFLICT` when the commit already has a release or the image is already recorded)."""

    async def create_release(self, release: dict[str, Any]) -> dict[str, Any]: ...

    async def get_release(self, repository: str, project: str, ref: str) -> dict[str, Any]: ...

    async def set_alias(
        self, repository: str, project: str, alias: str, *, release: str, alias_type: str
    ) -> dict[str, Any]: ...

    async def set_release_image(
        self, repository: str, project: str, ref: str, *, oci_uri: str, oci_digest: str
    ) -> dict[str, Any]: ...


class BlockingReleaseApi(Protocol):
    """:class:`ReleaseApi` for synchronous job handlers: each call waits for the API's answer."""

    def create_release(self, release: dict[str, Any]) -> dict[str, Any]: ...

    def get_release(self, repository: str, project: str, ref: str) -> dict[str, Any]: ...

    def set_alias(
        self, repository: str, project: str, alias: str, *, release: str, alias_type: str
    ) -> dict[str, Any]: ...

    def set_release_image(
        self, repository: str, project: str, ref: str, *, oci_uri: str, oci_digest: str
    ) -> dict[str, Any]: ...
