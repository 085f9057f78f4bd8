"""An async client of the Platform API: the RunRecorder of workers and orchestrators, and the
calls of the CLI (create, get, list and cancel runs). API errors come back as the matching
ForgeError subclass, with the server's code, message and details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from forge_core.domain.errors import ForgeError
from forge_core.services import errors
from forge_core.services import schemas as s

ERRORS: dict[str, type[ForgeError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidRequest,
        errors.AuthenticationFailed,
        errors.AuthorizationFailed,
        errors.NotFound,
        errors.Conflict,
    )
}


class PlatformError(ForgeError):
    """The API failed in a way that is not the caller's fault (5xx, unreachable)."""

    code = "internal_error"
    exit_code = 8


@dataclass(frozen=True)
class LogPage:
    """A page of a step's log: its bytes, where the next starts, the stored size and the step's
    status when it was read (``GET /v1/runs/{run_id}/steps/{step_id}/log``)."""

    data: bytes
    next_offset: int
    size: int
    step_status: str
    no_log: str | None = None  # why the step has no log (it ended without running)

    @property
    def complete(self) -> bool:
        """The log is read to its end and its step has ended: nothing more will come."""
        return self.next_offset >= self.size and self.step_status in FINAL


FINAL = frozenset(status.value for status in s.FINAL_STATUSES)


class PlatformClient:
    """Implements :class:`forge_core.ports.platform.RunRecorder` and ``DeploymentReporter``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}"}

    async def __aenter__(self) -> PlatformClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self._request(method, path, body, params)
        return response.json() if response.content else None

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method, path, json=body, params=params, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise PlatformError(
                f"cannot reach the Platform API: {type(exc).__name__}: {exc}", where=path
            ) from None
        if response.status_code >= 400:
            raise _error(response, path)
        return response

    # --- RunRecorder ----------------------------------------------------------------------------

    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        recorded: dict[str, Any] = await self._call("POST", f"/v1/runs/{run_id}/plan", plan)
        return recorded

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        body = _without_none(status=status, error=error)
        await self._call("PUT", f"/v1/runs/{run_id}/status", body)

    async def renew_lease(self, run_id: str, driver: str, ttl_seconds: float) -> s.RunSummary:
        """Hold the run's lease ``ttl_seconds`` more as ``driver`` (a Conflict: the run finished,
        or another driver holds it)."""
        renewed = await self._call("PUT", f"/v1/runs/{run_id}/lease", {"driver": driver, "ttl_seconds": ttl_seconds})
        return s.RunSummary.model_validate(renewed, extra="ignore")

    async def set_phase_status(self, phase_id: str, status: str) -> None:
        await self._call("PUT", f"/v1/phases/{phase_id}/status", {"status": status})

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        body = _without_none(status=status, error=error)
        await self._call("PUT", f"/v1/tasks/{task_id}/status", body)

    async def set_step_status(
        self,
        step_id: str,
        status: str,
        *,
        exit_code: int | None = None,
        logs_key: str | None = None,
    ) -> None:
        body = _without_none(status=status, exit_code=exit_code, logs_s3_key=logs_key)
        await self._call("PUT", f"/v1/steps/{step_id}/status", body)

    async def record_artifact(
        self, run_id: str, project: str, artifact: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        recorded: dict[str, Any] = await self._call(
            "PUT", f"/v1/runs/{run_id}/artifacts/{project}/{artifact}", record
        )
        return recorded

    async def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._call("GET", f"/v1/runs/{run_id}/artifacts/{project}/{artifact}")
        except errors.NotFound:
            return None
        return found

    # --- runs -----------------------------------------------------------------------------------

    async def create_run(self, run: s.RunCreate) -> s.Run:
        created = await self._call("POST", "/v1/runs", run.model_dump(mode="json"))
        return s.Run.model_validate(created, extra="ignore")

    async def get_run(self, run_id: str, *, attempt: int | None = None) -> s.Run:
        """The run on its current attempt, or as an earlier ``attempt`` ended."""
        params = {"attempt": attempt} if attempt is not None else None
        # A reader of responses: fields a newer server adds are skipped, not refused.
        return s.Run.model_validate(await self._call("GET", f"/v1/runs/{run_id}", params=params), extra="ignore")

    async def run_changes(self, run_id: str, since: int = 0) -> s.RunChanges:
        """What changed in the run after cursor ``since`` (``GET /v1/runs/{id}/progress``)."""
        found = await self._call("GET", f"/v1/runs/{run_id}/progress", params={"since": since})
        return s.RunChanges.model_validate(found, extra="ignore")

    async def list_runs(
        self,
        *,
        repository: str | None = None,
        branch: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> s.RunList:
        params = _without_none(
            repository=repository, branch=branch, status=status, limit=limit, offset=offset
        )
        return s.RunList.model_validate(await self._call("GET", "/v1/runs", params=params))

    async def rerun(self, run_id: str, *, only_failed: bool = True) -> s.Run:
        """The finished run's next attempt (a Conflict while an attempt is open)."""
        run = await self._call("POST", f"/v1/runs/{run_id}/rerun", {"only_failed": only_failed})
        return s.Run.model_validate(run, extra="ignore")

    async def cancel_run(self, run_id: str) -> None:
        await self._call("DELETE", f"/v1/runs/{run_id}")

    async def step_log(self, run_id: str, step_id: str, *, offset: int = 0, limit: int = 1024 * 1024) -> LogPage:
        """One page of a step's stored log: at most ``limit`` bytes from ``offset``."""
        path = f"/v1/runs/{run_id}/steps/{step_id}/log"
        response = await self._request("GET", path, params={"offset": offset, "limit": limit})
        try:
            return LogPage(
                data=response.content,
                next_offset=int(response.headers["X-Forge-Log-Next-Offset"]),
                size=int(response.headers["X-Forge-Log-Size"]),
                step_status=response.headers["X-Forge-Step-Status"],
                no_log=response.headers.get("X-Forge-No-Log"),
            )
        except (KeyError, ValueError):
            raise PlatformError("the Platform API answered a log page without its headers", where=path) from None

    # --- releases, deployments, promotions (the CLI's) ------------------------------------------

    async def list_releases(
        self, repository: str, project: str | None = None, *, limit: int = 20, offset: int = 0
    ) -> s.ReleaseList:
        path = f"/v1/releases/{repository}" + (f"/{_segment(project)}" if project else "")
        listing = await self._call("GET", path, params={"limit": limit, "offset": offset})
        return s.ReleaseList.model_validate(listing, extra="ignore")

    async def show_release(self, repository: str, project: str, ref: str) -> s.Release:
        """A release by number, commit or alias, typed (``get_release`` is the ReleaseApi port's JSON)."""
        return s.Release.model_validate(await self.get_release(repository, project, ref), extra="ignore")

    async def repository_environments(self, repository: str) -> s.RepositoryEnvironments:
        """The repository's environments in promotion order (``GET /v1/environments``)."""
        found = await self._call("GET", "/v1/environments", params={"repository": repository})
        return s.RepositoryEnvironments.model_validate(found, extra="ignore")

    async def list_deployments(
        self,
        repository: str,
        *,
        project: str | None = None,
        environment: str | None = None,
        statuses: tuple[str, ...] = (),
        limit: int = 200,
    ) -> s.DeploymentList:
        params = _without_none(repository=repository, project=project, environment=environment, limit=limit)
        params["status"] = list(statuses)
        listing = await self._call("GET", "/v1/deployments", params=params)
        return s.DeploymentList.model_validate(listing, extra="ignore")

    async def promote(self, promotion: s.PromotionCreate) -> s.Promotion:
        answer = await self._call("POST", "/v1/promotions", promotion.model_dump(mode="json"))
        return s.Promotion.model_validate(answer)

    async def roll_back(self, rollback: s.RollbackCreate) -> s.Promotion:
        answer = await self._call("POST", "/v1/rollbacks", rollback.model_dump(mode="json"))
        return s.Promotion.model_validate(answer)

    async def approve(self, approval: s.ApprovalCreate) -> s.Approval:
        created = await self._call("POST", "/v1/approvals", approval.model_dump(mode="json", exclude_none=True))
        return s.Approval.model_validate(created, extra="ignore")

    async def revoke_approval(self, approval_id: str) -> s.Approval:
        revoked = await self._call("DELETE", f"/v1/approvals/{_segment(approval_id)}")
        return s.Approval.model_validate(revoked, extra="ignore")

    # --- deployments (DeploymentReporter) -------------------------------------------------------

    async def create_deployment(
        self, release_id: str, environment: str, *, status: str = "pending"
    ) -> dict[str, Any]:
        body = {"release_id": release_id, "environment": environment, "status": status}
        created: dict[str, Any] = await self._call("POST", "/v1/deployments", body)
        return created

    async def set_deployment_status(
        self,
        deployment_id: str,
        status: str,
        *,
        gitops_commit_sha: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        body = _without_none(status=status, gitops_commit_sha=gitops_commit_sha, reason=reason)
        changed: dict[str, Any] = await self._call("PUT", f"/v1/deployments/{deployment_id}/status", body)
        return changed


    # --- releases (ReleaseApi) ------------------------------------------------------------------

    async def create_release(self, release: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self._call("POST", "/v1/releases", release)
        return created

    async def get_release(self, repository: str, project: str, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/v1/releases/{repository}/{project}/{quote(ref)}")
        return found

    async def set_alias(
        self, repository: str, project: str, alias: str, *, release: str, alias_type: str
    ) -> dict[str, Any]:
        body = {"release": release, "alias_type": alias_type}
        moved: dict[str, Any] = await self._call(
            "PUT", f"/v1/releases/{repository}/{project}/aliases/{quote(alias)}", body
        )
        return moved

    async def set_release_image(
        self, repository: str, project: str, ref: str, *, oci_uri: str, oci_digest: str
    ) -> dict[str, Any]:
        body = {"oci_uri": oci_uri, "oci_digest": oci_digest}
        recorded: dict[str, Any] = await self._call(
            "PUT", f"/v1/releases/{repository}/{project}/{quote(ref, safe='')}/image", body
        )
        return recorded

if TYPE_CHECKING:  # mypy checks that the client satisfies the ports
    from forge_core.ports.platform import DeploymentReporter, ReleaseApi, RunRecorder

    _recorder: RunRecorder = PlatformClient("http://127.0.0.1", "token")
    _reporter: DeploymentReporter = PlatformClient("http://127.0.0.1", "token")
    _releases: ReleaseApi = PlatformClient("http://127.0.0.1", "token")


def _segment(value: str) -> str:
    """A path segment as given: ``/`` and the like are escaped (an alias may hold ``/``)."""
    from urllib.parse import quote

    return quote(value, safe="")


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _error(response: httpx.Response, path: str) -> ForgeError:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        return PlatformError(f"HTTP {response.status_code} from the Platform API", where=path)
    cls = ERRORS.get(code, PlatformError)
    return cls(message, where=str(details.get("where") or path), details=details)
