"""The Platform API called directly, for callers in the process that serves it (``forge run``'s
in-process workers and orchestrator on the embedded API): the same use cases, stores, checks and
errors as the HTTP routes, without HTTP, JSON or a token to verify per call.

:class:`InProcessApi` is a :class:`~forge_core.adapters.platform_client.PlatformClient` whose
hot calls (a run's state: its plan and every status, artifact records, releases, deployments)
go straight to the application's services, each doing what its route does: the caller's
permission checked, the body validated into the route's model (a bad value is the same
``InvalidRequest``), the same store method, the outbox sender woken where the route wakes it.
Every other call goes through the application over its in-memory transport, as before. The
caller is the process itself, holding a token it minted for an unscoped principal, so the
repository-scope check (which concerns scoped tokens only) has nothing to refuse.

It also records several task and step changes in one transaction
(:class:`~forge_core.ports.platform.StatusBatchRecorder`): the ``ci`` job's start of a task with
its first step, and each step's end with the next one's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from forge_core.adapters.platform_client import PlatformClient, PlatformError
from forge_core.api.deps import Services
from forge_core.domain.errors import ForgeError
from forge_core.domain.run_plan import RunPlan
from forge_core.ports.platform import StatusChange
from forge_core.services import schemas as s
from forge_core.services.auth import Principal
from forge_core.services.errors import InvalidRequest, NotFound

M = TypeVar("M", bound=BaseModel)


def _parsed(model: type[M], data: Any) -> M:
    """``data`` as the route's body model; refused as the API refuses a bad body."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        first = exc.errors()[0]
        raise InvalidRequest(
            f"invalid request: {'; '.join(problems)}", where=".".join(str(p) for p in ("body", *first["loc"]))
        ) from None


def _uuid(value: str, where: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"{where} must be a UUID, not {value!r}", where=where) from None


def _json(model: BaseModel) -> dict[str, Any]:
    """What the route answers: the model as JSON values (its aliases, its excluded fields left out)."""
    return model.model_dump(mode="json", by_alias=True)


class InProcessApi(PlatformClient):
    """The PlatformClient of a caller inside the API's own process (see the module)."""

    def __init__(self, services: Services, principal: Principal, http: httpx.AsyncClient, token: str) -> None:
        super().__init__(str(http.base_url), token, client=http)
        self.services, self.principal = services, principal

    async def _do(self, permission: str, call: Any) -> Any:
        """``await call`` for a caller with ``permission``; a failure that is not the caller's
        is a PlatformError, as the route's 500 would be."""
        try:
            self.principal.require(permission)
            return await call
        except ForgeError:
            raise
        except Exception as exc:
            raise PlatformError(f"the Platform API failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if hasattr(call, "close"):
                call.close()  # not awaited when the permission is missing

    @property
    def _actor(self) -> str:
        return self.principal.subject

    def _wake(self) -> None:
        if self.services.sender:
            self.services.sender.wake()

    # --- RunRecorder ----------------------------------------------------------------------------

    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        body = _parsed(RunPlan, plan)
        s.check_plan(body)
        recorded = await self._do("status", self.services.store.record_plan(_uuid(run_id, "run_id"), body, self._actor))
        return _json(recorded)

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        body = _parsed(s.RunStatusUpdate, _without_none(status=status, error=error))
        await self._do("status", self.services.platform.set_run_status(_uuid(run_id, "run_id"), body, self._actor))
        self._wake()

    async def set_phase_status(self, phase_id: str, status: str) -> None:
        body = _parsed(s.PhaseStatusUpdate, {"status": status})
        await self._do("status", self.services.store.set_phase_status(_uuid(phase_id, "phase_id"), body, self._actor))

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        body = _parsed(s.TaskStatusUpdate, _without_none(status=status, error=error))
        await self._do("status", self.services.store.set_task_status(_uuid(task_id, "task_id"), body, self._actor))

    async def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None:
        body = _parsed(s.StepStatusUpdate, _without_none(status=status, exit_code=exit_code, logs_s3_key=logs_key))
        await self._do("status", self.services.store.set_step_status(_uuid(step_id, "step_id"), body, self._actor))

    async def record_statuses(self, changes: Sequence[StatusChange]) -> None:
        updates: list[s.EntityStatusUpdate] = []
        for change in changes:
            if change.kind == "task":
                task = _parsed(s.TaskStatusUpdate, _without_none(status=change.status, error=change.error))
                updates.append((_uuid(change.entity_id, "task_id"), task))
            else:
                step = _parsed(s.StepStatusUpdate, _without_none(
                    status=change.status, exit_code=change.exit_code, logs_s3_key=change.logs_key))
                updates.append((_uuid(change.entity_id, "step_id"), step))
        await self._do("status", self.services.store.set_statuses(updates, self._actor))

    async def record_artifact(
        self, run_id: str, project: str, artifact: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        body = _parsed(s.ArtifactRecordUpdate, record)
        call = self.services.store.record_artifact(_uuid(run_id, "run_id"), project, artifact, body, self._actor)
        return _json(await self._do("status", call))

    async def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None:
        try:
            found = await self._do("read", self.services.store.get_artifact_record(
                _uuid(run_id, "run_id"), project, artifact))
        except NotFound:
            return None
        return _json(found)

    # --- runs -----------------------------------------------------------------------------------

    async def create_run(self, run: s.RunCreate) -> s.Run:
        created: s.Run = await self._do("run", self.services.platform.create_run(run, self._actor))
        self._wake()
        return created

    async def get_run(self, run_id: str, *, attempt: int | None = None) -> s.Run:
        # as the route does: a run whose driver stopped renewing its lease is closed first
        found: s.Run = await self._do("read", self.services.platform.get_run(_uuid(run_id, "run_id"), attempt))
        return found

    async def cancel_run(self, run_id: str) -> None:
        await self._do("run", self.services.platform.cancel_run(_uuid(run_id, "run_id"), self._actor))
        await self.services.announce_cancel(run_id)  # as the route does: the workers stop its jobs

    # --- deployments (DeploymentReporter) -------------------------------------------------------

    async def create_deployment(
        self, release_id: str, environment: str, *, status: str = "pending"
    ) -> dict[str, Any]:
        body = _parsed(s.DeploymentCreate, {"release_id": release_id, "environment": environment, "status": status})
        return _json(await self._do("deploy", self.services.platform.create_deployment(body, self._actor)))

    async def set_deployment_status(
        self,
        deployment_id: str,
        status: str,
        *,
        gitops_commit_sha: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        body = _parsed(s.DeploymentStatusUpdate,
                       _without_none(status=status, gitops_commit_sha=gitops_commit_sha, reason=reason))
        call = self.services.platform.set_deployment_status(_uuid(deployment_id, "deployment_id"), body, self._actor)
        return _json(await self._do("status", call))


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
