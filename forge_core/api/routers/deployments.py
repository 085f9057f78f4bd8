"""Deployments of releases to environments, and the approvals protected environments need."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response

from forge_core.api.deps import App, Approvals, Approver, Deployer, Deployments, Paging, Reader, Worker
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.services import schemas as s

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
Segment = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/deployments", status_code=201, response_model=s.Deployment, tags=["deployments"])
async def create_deployment(
    body: s.DeploymentCreate, app: App, who: Deployer
) -> s.Deployment:
    """Deploy a release; it supersedes the project's active deployment in that environment.
    Protected environments (production) need an active, unexpired approval of the release."""
    return await app.platform.create_deployment(body, who.subject)


@router.put("/deployments/{deployment_id}/status", response_model=s.Deployment, tags=["deployments"])
async def set_deployment_status(
    deployment_id: UUID, body: s.DeploymentStatusUpdate, app: App, who: Worker
) -> s.Deployment:
    """The deployment job's report: a pending deployment becomes ``active`` when its pointer
    commit lands (superseding the project's active one in that environment) or ``failed`` with
    the reason. The same report twice is answered alike; any other change is a 409."""
    return await app.platform.set_deployment_status(deployment_id, body, who.subject)


@router.get("/deployments", response_model=s.DeploymentList, tags=["deployments"])
async def list_deployments(
    repository: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=255)],
    deployments: Deployments,
    _: Reader,
    paging: Paging,
    project: Annotated[str | None, Query(max_length=128)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[s.DeploymentStatus] | None, Query()] = None,
) -> s.DeploymentList:
    """A repository's deployments, newest first: filter by project, environment and status
    (repeatable). What ``forge status`` draws its matrix and history from."""
    return await deployments.list_deployments(
        repository, paging, project=project, environment=environment, statuses=status or []
    )


CURRENT = "/deployments/{environment}/{owner}/{repo}/{project}"


@router.get(CURRENT, response_model=s.Deployment, tags=["deployments"])
async def current_deployment(
    environment: Segment,
    owner: Segment,
    repo: Segment,
    project: Segment,
    deployments: Deployments,
    _: Reader,
) -> s.Deployment:
    return await deployments.current_deployment(environment, f"{owner}/{repo}", project)


@router.get(CURRENT + "/history", response_model=s.DeploymentList, tags=["deployments"])
async def deployment_history(
    environment: Segment,
    owner: Segment,
    repo: Segment,
    project: Segment,
    deployments: Deployments,
    _: Reader,
    paging: Paging,
) -> s.DeploymentList:
    return await deployments.deployment_history(environment, f"{owner}/{repo}", project, paging)


@router.post("/approvals", status_code=201, response_model=s.Approval, tags=["approvals"])
async def create_approval(
    body: s.ApprovalCreate, app: App, who: Approver
) -> s.Approval:
    """Approve a release for an environment, with a justification and an optional expiry. The
    approver's roles and groups are kept (approval policies may ask for them); approving one's own
    release is refused unless the environment's policy allows it."""
    return await app.platform.create_approval(body, who.subject, roles=who.roles, groups=who.groups)


@router.get("/approvals", response_model=s.ApprovalList, tags=["approvals"])
async def list_approvals(
    approvals: Approvals,
    _: Reader,
    paging: Paging,
    release_id: UUID | None = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
) -> s.ApprovalList:
    return await approvals.list_approvals(paging, release_id=release_id, environment=environment)


@router.get("/approvals/{release_id}/{environment}", response_model=s.Approval, tags=["approvals"])
async def active_approval(
    release_id: UUID, environment: Segment, approvals: Approvals, _: Reader
) -> s.Approval:
    """The active approval of a release for an environment (404 if there is none)."""
    return await approvals.active_approval(release_id, environment)


@router.delete("/approvals/{approval_id}", response_model=s.Approval, tags=["approvals"])
async def revoke_approval(approval_id: UUID, approvals: Approvals, who: Approver) -> s.Approval:
    """Revoke an approval; deployments can no longer use it."""
    return await approvals.revoke_approval(approval_id, who.subject)



@router.get("/environments", response_model=s.RepositoryEnvironments, tags=["promotions"])
async def repository_environments(
    repository: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=255)],
    app: App,
    _: Reader,
) -> s.RepositoryEnvironments:
    """The environments of a repository, in promotion order, with their rules: its repo.cue's
    ``environments`` block as recorded with its newest planned run (``source: repo.cue``), else the
    documented defaults (``source: defaults``). What deployments, approvals, promotions and
    ``forge status`` go by."""
    return await app.platform.environments(repository)


@router.post("/promotions", status_code=201, response_model=s.Promotion, tags=["promotions"])
async def promote(body: s.PromotionCreate, app: App, who: Deployer, response: Response) -> s.Promotion:
    """Promote a release of each project to an environment, all or none, under the repository's
    environments (``repo.cue``; else the defaults). The answer is the decision: every rule of
    every project, passed or not and why. Allowed: a pending deployment of each (201), which the
    deployment job commits in one GitOps commit. ``dry_run``: only the decision (200). Refused:
    403 naming each blocking rule (``details.blocking``, ``details.decision``)."""
    promotion = await app.platform.promote(body, who.subject)
    if body.dry_run:
        response.status_code = 200
    return promotion


@router.post("/rollbacks", status_code=201, response_model=s.Promotion, tags=["promotions"])
async def roll_back(body: s.RollbackCreate, app: App, who: Deployer, response: Response) -> s.Promotion:
    """Deploy an older release again (default: the one that ran before the active one); it must
    have run in the environment before. Answered like a promotion."""
    rollback = await app.platform.roll_back(body, who.subject)
    if body.dry_run:
        response.status_code = 200
    return rollback
