"""Deployments of releases to environments (one active per environment, repository and project)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from forge_core.adapters.db import models as m
from forge_core.adapters.db.approvals import active_approvals
from forge_core.adapters.db.database import SqlDatabase, audit, paged, stored
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, Conflict, NotFound


class SqlDeployments(SqlDatabase):
    """Implements :class:`forge_core.services.store.DeploymentStore`; each method is one transaction."""

    async def create_deployment(
        self, data: s.DeploymentCreate, actor: str, *, approval_required: bool
    ) -> tuple[s.Deployment, s.Deployment | None]:
        now = m.utcnow()
        try:
            async with self.transaction() as session:
                release = await session.get(m.Release, data.release_id)
                if release is None:
                    raise NotFound(f"release {data.release_id} does not exist", where="release_id")
                approval = None
                if approval_required or data.approval_id:
                    approval = await _usable_approval(session, data, now)
                if approval_required and approval is None:
                    raise AuthorizationFailed(
                        f"deploying to {data.environment} needs an active approval "
                        f"of release {release.id}",
                        where="approval_id",
                        details={"environment": data.environment, "release_id": str(release.id)},
                    )
                previous = None
                if data.status is s.DeploymentStatus.ACTIVE:  # a pending one supersedes when it lands
                    previous = await _supersede(session, data.environment, release.repository, release.project)
                deployment = m.Deployment(
                    id=uuid.uuid4(),
                    release_id=release.id,
                    repository=release.repository,
                    project=release.project,
                    environment=data.environment,
                    status=data.status.value,
                    approval_id=approval.id if approval else None,
                    deployed_at=now,
                    deployed_by=actor,
                    gitops_commit_sha=data.gitops_commit_sha,
                )
                deployment.release = release
                session.add(deployment)
                details = {"environment": data.environment, "release_id": str(release.id),
                           "status": data.status.value}
                audit(session, actor, "deployment.created", "deployment", deployment.id, details)
        except IntegrityError:
            raise Conflict(
                f"another deployment to {data.environment} was created at the same time; retry",
                where="environment",
            ) from None
        return _deployment(deployment), _deployment(previous) if previous else None

    async def set_deployment_status(
        self, deployment_id: uuid.UUID, data: s.DeploymentStatusUpdate, actor: str
    ) -> tuple[s.Deployment, s.Deployment | None]:
        now = m.utcnow()
        try:
            async with self.transaction() as session:
                row = await session.scalar(
                    _deployment_query().where(m.Deployment.id == deployment_id).with_for_update()
                )
                if row is None:
                    raise NotFound(f"deployment {deployment_id} does not exist", where="deployment_id")
                if _already(row, data):  # a redelivered report: the answer it got the first time
                    return _deployment(row), None
                if row.status != s.DeploymentStatus.PENDING.value:
                    raise Conflict(
                        f"deployment {deployment_id} is {row.status}; only a pending deployment "
                        f"becomes {data.status.value}",
                        where="status",
                        details={"status": row.status},
                    )
                previous = None
                if data.status is s.DeploymentStatus.ACTIVE:
                    previous = await _supersede(session, row.environment, row.repository, row.project)
                    row.gitops_commit_sha = data.gitops_commit_sha
                    row.deployed_at = now  # the moment its pointer landed
                else:
                    row.reason = data.reason
                row.status = data.status.value
                details = {"status": data.status.value, "gitops_commit_sha": data.gitops_commit_sha,
                           "reason": data.reason,
                           "superseded": str(previous.id) if previous is not None else None}
                audit(session, actor, "deployment.status", "deployment", row.id, details)
        except IntegrityError:
            raise Conflict(
                "another deployment of the project was activated at the same time; retry",
                where="status",
            ) from None
        return _deployment(row), _deployment(previous) if previous else None

    async def current_deployment(
        self, environment: str, repository: str, project: str
    ) -> s.Deployment:
        async with self.sessions() as session:
            row = await session.scalar(_active_deployment(environment, repository, project))
            if row is None:
                raise NotFound(
                    f"{repository}/{project} has no active deployment in {environment}",
                    where="environment",
                )
            return _deployment(row)

    async def list_deployments(
        self, repository: str, page: s.Page, *, project: str | None, environment: str | None,
        statuses: Sequence[s.DeploymentStatus],
    ) -> s.DeploymentList:
        query = _deployment_query().where(m.Deployment.repository == stored(repository))
        if project is not None:
            query = query.where(m.Deployment.project == project)
        if environment is not None:
            query = query.where(m.Deployment.environment == environment)
        if statuses:
            query = query.where(m.Deployment.status.in_([status.value for status in statuses]))
        order = (m.Deployment.deployed_at.desc(), m.Deployment.id)
        async with self.sessions() as session:
            total, rows = await paged(session, query, page, *order)
            return s.DeploymentList(
                deployments=[_deployment(d) for d in rows], total=total, limit=page.limit, offset=page.offset
            )

    async def deployment_history(
        self, environment: str, repository: str, project: str, page: s.Page
    ) -> s.DeploymentList:
        query = _deployment_query().where(
            m.Deployment.environment == environment,
            m.Deployment.repository == stored(repository),
            m.Deployment.project == project,
        )
        order = (m.Deployment.deployed_at.desc(), m.Deployment.id)
        async with self.sessions() as session:
            total, rows = await paged(session, query, page, *order)
            return s.DeploymentList(
                deployments=[_deployment(d) for d in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )


# --- queries and rules applied in the transaction ----------------------------------------------


def _deployment_query() -> Select[m.Deployment]:
    return select(m.Deployment).options(selectinload(m.Deployment.release))


def _active_deployment(environment: str, repository: str, project: str) -> Select[m.Deployment]:
    return _deployment_query().where(
        m.Deployment.environment == environment,
        m.Deployment.repository == stored(repository),
        m.Deployment.project == project,
        m.Deployment.status == s.DeploymentStatus.ACTIVE.value,
    )


async def _supersede(
    session: AsyncSession, environment: str, repository: str, project: str
) -> m.Deployment | None:
    """The active deployment of the project in the environment, now superseded (or None)."""
    previous = await session.scalar(_active_deployment(environment, repository, project).with_for_update())
    if previous is not None:
        previous.status = s.DeploymentStatus.SUPERSEDED.value
        await session.flush()  # before another row takes the one active place
    return previous


def _already(row: m.Deployment, data: s.DeploymentStatusUpdate) -> bool:
    if row.status != data.status.value:
        return False
    if data.status is s.DeploymentStatus.ACTIVE:
        return row.gitops_commit_sha == data.gitops_commit_sha
    return row.reason == data.reason


async def _usable_approval(
    session: AsyncSession, data: s.DeploymentCreate, now: datetime
) -> m.ReleaseApproval | None:
    query = active_approvals(now).where(
        m.ReleaseApproval.release_id == data.release_id,
        m.ReleaseApproval.environment == data.environment,
    )
    if data.approval_id is None:
        return await session.scalar(query.limit(1))
    approval = await session.scalar(query.where(m.ReleaseApproval.id == data.approval_id))
    if approval is None:
        raise AuthorizationFailed(
            f"approval {data.approval_id} is not an active approval of release "
            f"{data.release_id} for {data.environment}",
            where="approval_id",
        )
    return approval


# --- rows to schemas --------------------------------------------------------------------------


def _deployment(row: m.Deployment) -> s.Deployment:
    return s.Deployment(
        id=row.id,
        release_id=row.release_id,
        repository=row.repository,
        project=row.project,
        release_number=row.release.release_number,
        environment=row.environment,
        status=s.DeploymentStatus(row.status),
        approval_id=row.approval_id,
        deployed_at=row.deployed_at,
        deployed_by=row.deployed_by,
        gitops_commit_sha=row.gitops_commit_sha,
        reason=row.reason,
    )
