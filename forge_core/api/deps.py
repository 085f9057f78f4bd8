"""FastAPI dependencies: the application's services and the caller's permissions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from forge_core.adapters.auth.github import GithubExchange
from forge_core.adapters.auth.tokens import TokenVerifier
from forge_core.api import scope
from forge_core.plugin.host import PluginHost
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthenticationFailed, InvalidRequest
from forge_core.services.outbox import OutboxSender
from forge_core.services.platform import Platform
from forge_core.services.schemas import Page
from forge_core.services.store import (
    ApprovalStore,
    DeploymentStore,
    OutboxStore,
    Reachable,
    ReleaseStore,
    RunStore,
    Store,
)
from forge_core.settings import Settings

if TYPE_CHECKING:
    from forge_core.adapters.bus.cancel import CancelAnnouncer


class Wakeable(Protocol):
    def wake(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    host: PluginHost
    store: Store
    platform: Platform
    verifier: TokenVerifier
    github: GithubExchange
    sender: OutboxSender | None
    cancels: CancelAnnouncer | None = None
    """Tells the workers over the bus (configured, or the private server) to stop a cancelled run's jobs."""
    starter: Wakeable | None = None
    """The run starter of this replica, woken when a run is created (None: another process starts runs)."""

    async def announce_cancel(self, run_id: str) -> None:
        """After a run was cancelled: the workers running its jobs are told to stop them, and the
        outbox sender sends the news (the route and the in-process API, one way)."""
        if self.cancels is not None:
            await self.cancels.announce(run_id)
        if self.sender:
            self.sender.wake()


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


# Each router asks for the narrow port of the aggregate it works on, not the whole store.
def database(request: Request) -> Reachable:
    return services(request).store


def run_store(request: Request) -> RunStore:
    return services(request).store


def release_store(request: Request) -> ReleaseStore:
    return services(request).store


def deployment_store(request: Request) -> DeploymentStore:
    return services(request).store


def approval_store(request: Request) -> ApprovalStore:
    return services(request).store


def outbox_store(request: Request) -> OutboxStore:
    return services(request).store


bearer = HTTPBearer(auto_error=False, description="An OIDC access token, or a platform token")


def require(permission: str | None) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller, checks ``permission`` (None: any) and, for a
    token scoped to a repository, that the request names nothing of another repository
    (:mod:`forge_core.api.scope`): every operation with a token is checked, before its handler."""

    async def authenticated(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise AuthenticationFailed("missing bearer token", where="Authorization")
        principal = await services(request).verifier.verify(credentials.credentials)
        if permission is not None:
            principal.require(permission)
        await scope.enforce(request, principal, services(request).store)
        return principal

    return authenticated


async def checked_parameters(request: Request) -> None:
    """Refuse query parameters the operation does not declare (a typo is an error, not a no-op),
    and NUL characters in parameters (no database stores them in text)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and request.query_params:
        known = _query_names(route)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise InvalidRequest(
                f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known)) or 'none'}",
                where="query",
            )
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if "\x00" in str(value):
            raise InvalidRequest("NUL characters are not allowed", where=name)


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    def names(dependant: Dependant) -> set[str]:
        found = {p.alias for p in dependant.query_params}
        for sub in dependant.dependencies:
            found |= names(sub)
        return found

    if id(route) not in _QUERY_NAMES:
        _QUERY_NAMES[id(route)] = frozenset(names(route.dependant))
    return _QUERY_NAMES[id(route)]


def page(
    limit: Annotated[int, Query(ge=1, le=200, description="Results per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Results to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


App = Annotated[Services, Depends(services)]
Database = Annotated[Reachable, Depends(database)]
Runs = Annotated[RunStore, Depends(run_store)]
Releases = Annotated[ReleaseStore, Depends(release_store)]
Deployments = Annotated[DeploymentStore, Depends(deployment_store)]
Approvals = Annotated[ApprovalStore, Depends(approval_store)]
Outbox = Annotated[OutboxStore, Depends(outbox_store)]
Paging = Annotated[Page, Depends(page)]
Reader = Annotated[Principal, Depends(require("read"))]
Runner = Annotated[Principal, Depends(require("run"))]
Worker = Annotated[Principal, Depends(require("status"))]
Releaser = Annotated[Principal, Depends(require("release"))]
Deployer = Annotated[Principal, Depends(require("deploy"))]
Approver = Annotated[Principal, Depends(require("approve"))]
Anyone = Annotated[Principal, Depends(require(None))]


def json_of(model: BaseModel, status_code: int = 200) -> Response:
    """The model as a JSON response, serialised once (a returned model would be validated again
    against the route's response_model, which documents the same type)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
