"""Approvals of a release for an environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, select

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase, audit, locked, paged
from forge_core.services import schemas as s
from forge_core.services.errors import Conflict, InvalidRequest, NotFound
from forge_core.services.promotion import check_not_self_approval, environments_of


class SqlApprovals(SqlDatabase):
    """Implements :class:`forge_core.services.store.ApprovalStore`; each method is one transaction."""

    async def create_approval(
        self, data: s.ApprovalCreate, actor: str, *, roles: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> s.Approval:
        now = m.utcnow()
        if data.expires_at is not None and data.expires_at.tzinfo is None:
            raise InvalidRequest("expires_at needs a time zone (e.g. 'Z')", where="expires_at")
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidRequest("expires_at is in the past", where="expires_at")
        async with self.transaction() as session:
            release = await session.get(m.Release, data.release_id)
            if release is None:
                raise NotFound(f"release {data.release_id} does not exist", where="release_id")
            run = await session.get(m.PipelineRun, release.pipeline_run_id) if release.pipeline_run_id else None
            recorded = run.discovery_output.get("environments") if run and run.discovery_output else None
            check_not_self_approval(
                environments_of(recorded), data.environment,
                author=run.triggered_by if run else release.created_by, approver=actor,
                number=release.release_number,
            )
            approval = m.ReleaseApproval(
                id=uuid.uuid4(),
                release_id=data.release_id,
                environment=data.environment,
                approver=actor,
                approved_at=now,
                expires_at=data.expires_at,
                justification=data.justification,
                status=s.ApprovalStatus.ACTIVE.value,
                approver_roles=sorted(roles),
                approver_groups=sorted(groups),
            )
            session.add(approval)
            details = {"environment": data.environment}
            audit(session, actor, "approval.created", "approval", approval.id, details)
        return _approval(approval, now)

    async def revoke_approval(self, approval_id: uuid.UUID, actor: str) -> s.Approval:
        now = m.utcnow()
        async with self.transaction() as session:
            approval = await locked(session, m.ReleaseApproval, approval_id, "approval")
            if approval.status == s.ApprovalStatus.REVOKED.value:
                raise Conflict(f"approval {approval_id} is already revoked", where="approval_id")
            approval.status = s.ApprovalStatus.REVOKED.value
            approval.revoked_at, approval.revoked_by = now, actor
            audit(session, actor, "approval.revoked", "approval", approval_id, {})
        return _approval(approval, now)

    async def active_approval(self, release_id: uuid.UUID, environment: str) -> s.Approval:
        now = m.utcnow()
        query = active_approvals(now).where(
            m.ReleaseApproval.release_id == release_id, m.ReleaseApproval.environment == environment
        )
        async with self.sessions() as session:
            approval = await session.scalar(query)
            if approval is None:
                raise NotFound(
                    f"release {release_id} has no active approval for {environment}",
                    where="environment",
                )
            return _approval(approval, now)

    async def list_approvals(
        self, page: s.Page, *, release_id: uuid.UUID | None, environment: str | None
    ) -> s.ApprovalList:
        now = m.utcnow()
        query = select(m.ReleaseApproval)
        if release_id is not None:
            query = query.where(m.ReleaseApproval.release_id == release_id)
        if environment is not None:
            query = query.where(m.ReleaseApproval.environment == environment)
        order = (m.ReleaseApproval.approved_at.desc(), m.ReleaseApproval.id)
        async with self.sessions() as session:
            total, rows = await paged(session, query, page, *order)
            return s.ApprovalList(
                approvals=[_approval(a, now) for a in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )


# --- queries ----------------------------------------------------------------------------------


def active_approvals(now: datetime) -> Select[m.ReleaseApproval]:
    approval = m.ReleaseApproval
    return (
        select(approval)
        .where(
            approval.status == s.ApprovalStatus.ACTIVE.value,
            approval.expires_at.is_(None) | (approval.expires_at > now),
        )
        .order_by(approval.approved_at.desc())
    )


# --- rows to schemas --------------------------------------------------------------------------


def _approval(row: m.ReleaseApproval, now: datetime) -> s.Approval:
    status = s.ApprovalStatus(row.status)
    if status == s.ApprovalStatus.ACTIVE and row.expires_at is not None and row.expires_at <= now:
        status = s.ApprovalStatus.EXPIRED
    return s.Approval(
        id=row.id,
        release_id=row.release_id,
        environment=row.environment,
        approver=row.approver,
        approved_at=row.approved_at,
        expires_at=row.expires_at,
        justification=row.justification,
        status=status,
    )
