"""Deployments of releases to environments, and the approvals protected environments need."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from forge_core.api.deps import App, Approvals, Approver, Deployer, Deployments, Paging, Reader, Releases
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.services import schemas as s
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthorizationFailed
from forge_core.services.store import ReleaseStore

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
Segment = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/deployments", status_code=201, response_model=s.Deployment, tags=["deployments"])
async def create_deployment(
    body: s.DeploymentCreate, app: App, releases: Releases, who: Deployer
) -> s.Deployment:
    """Deploy a release; it supersedes the project's active deployment in that environment.
    Protected environments (production) need an active, unexpired approval of the release."""
    await _check_release_repository(releases, who, body.release_id)
    return await app.platform.create_deployment(body, who.subject)


CURRENT = "/deployments/{environment}/{owner}/{repo}/{project}"


@router.get(CURRENT, response_model=s.Deployment, tags=["deployments"])
async def current_deployment(
    environment: Segment,
    owner: Segment,
    repo: Segment,
    project: Segment,
    deployments: Deployments,
    who: Reader,
) -> s.Deployment:
    who.require_repository(f"{owner}/{repo}")
    return await deployments.current_deployment(environment, f"{owner}/{repo}", project)


@router.get(CURRENT + "/history", response_model=s.DeploymentList, tags=["deployments"])
async def deployment_history(
    environment: Segment,
    owner: Segment,
    repo: Segment,
    project: Segment,
    deployments: Deployments,
    who: Reader,
    paging: Paging,
) -> s.DeploymentList:
    who.require_repository(f"{owner}/{repo}")
    return await deployments.deployment_history(environment, f"{owner}/{repo}", project, paging)


@router.post("/approvals", status_code=201, response_model=s.Approval, tags=["approvals"])
async def create_approval(
    body: s.ApprovalCreate, app: App, releases: Releases, who: Approver
) -> s.Approval:
    """Approve a release for an environment, with a justification and an optional expiry."""
    await _check_release_repository(releases, who, body.release_id)
    return await app.platform.create_approval(body, who.subject)


@router.get("/approvals", response_model=s.ApprovalList, tags=["approvals"])
async def list_approvals(
    approvals: Approvals,
    releases: Releases,
    who: Reader,
    paging: Paging,
    release_id: UUID | None = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
) -> s.ApprovalList:
    if who.repository is not None:
        if release_id is None:
            raise AuthorizationFailed(
                f"{who.subject} may list the approvals of its repository's releases only: give release_id",
                where="release_id",
            )
        await _check_release_repository(releases, who, release_id)
    return await approvals.list_approvals(paging, release_id=release_id, environment=environment)


@router.get("/approvals/{release_id}/{environment}", response_model=s.Approval, tags=["approvals"])
async def active_approval(
    release_id: UUID, environment: Segment, approvals: Approvals, releases: Releases, who: Reader
) -> s.Approval:
    """The active approval of a release for an environment (404 if there is none)."""
    await _check_release_repository(releases, who, release_id)
    return await approvals.active_approval(release_id, environment)


@router.delete("/approvals/{approval_id}", response_model=s.Approval, tags=["approvals"])
async def revoke_approval(approval_id: UUID, approvals: Approvals, who: Approver) -> s.Approval:
    """Revoke an approval; deployments can no longer use it."""
    return await approvals.revoke_approval(approval_id, who.subject)


async def _check_release_repository(releases: ReleaseStore, who: Principal, release_id: UUID) -> None:
    """A repository's token acts on that repository's releases only."""
    if who.repository is not None:
        who.require_repository((await releases.get_release_by_id(release_id)).repository)
