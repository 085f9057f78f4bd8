"""The port through which workers and orchestrators record state in the Platform API.

Everything that changes a run (its plan, and the status of runs, phases, tasks and steps) goes
through the API, which keeps the audit trail; the HTTP implementation lives in the adapters.
Endpoints (``/v1``): ``POST /runs/{id}/plan``, ``PUT /runs/{id}/status``,
``PUT /phases/{id}/status``, ``PUT /tasks/{id}/status``, ``PUT /steps/{id}/status``.
"""

from __future__ import annotations

from typing import Any, Protocol

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
