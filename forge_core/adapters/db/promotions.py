"""Promotions and rollbacks: the facts of each project read, decided and carried out in one
transaction (see :mod:`forge_core.services.promotion`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase, audit, stored
from forge_core.adapters.db.deployments import _deployment, _deployment_query
from forge_core.adapters.db.releases import _release_query, _resolve
from forge_core.domain.promotion import Approval, Environments, GroupDecision, Placement, ReleaseFacts
from forge_core.services import schemas as s
from forge_core.services.errors import Conflict, InvalidRequest, NotFound
from forge_core.services.promotion import Candidate, Decide, environments_of

Wanted = tuple[str, str, str | None]
"""(repository, project, release ref or None for "the one before the active one")."""

LIVE = (s.DeploymentStatus.ACTIVE.value, s.DeploymentStatus.PENDING.value)


class SqlPromotions(SqlDatabase):
    """Implements :class:`forge_core.services.store.PromotionStore`."""

    async def repository_environments(self, repository: str) -> tuple[Environments | None, uuid.UUID | None]:
        query = (
            select(m.PipelineRun.id, m.PipelineRun.discovery_output)
            .where(m.PipelineRun.repository == repository, m.PipelineRun.discovery_output.is_not(None))
            .order_by(m.PipelineRun.created_at.desc(), m.PipelineRun.id.desc())
            .limit(1)
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).one_or_none()
        if row is None:
            return None, None
        recorded = (row.discovery_output or {}).get("environments")
        return (Environments.model_validate(recorded) if recorded else None), row.id

    async def promote(
        self,
        environment: str,
        releases: Sequence[Wanted],
        actor: str,
        decide: Decide,
        *,
        dry_run: bool,
        action: str,
    ) -> tuple[GroupDecision, list[s.Deployment]]:
        try:
            async with self.transaction() as session:
                await _lock_projects(session, sorted({(repo, project) for repo, project, _ in releases}))
                found = [await _candidate(session, environment, *wanted, action=action) for wanted in releases]
                now = m.utcnow()  # after the locks: the decision sees what the previous promotion left
                decision = decide([candidate for candidate, _ in found], now)
                if dry_run or not decision.allowed:
                    return decision, []
                rows = [
                    _pending(release, environment, actor, now) for _, release in found
                ]
                session.add_all(rows)
                await session.flush()
                details = {
                    "environment": environment,
                    "deployments": [str(row.id) for row in rows],
                    "decision": decision.model_dump(mode="json"),
                }
                audit(session, actor, f"{action}.created", action, rows[0].id, details)
        except IntegrityError:
            raise Conflict(
                f"another change to {environment} was made at the same time; retry", where="environment"
            ) from None
        return decision, [_deployment(row) for row in rows]


async def _lock_projects(session: AsyncSession, projects: Sequence[tuple[str, str]]) -> None:
    """Lock each project's release counter row, in one order (no deadlock between groups): a
    project's promotions are then decided one at a time. (SQLite serialises every write anyway.)"""
    for repository, project in projects:
        await session.execute(
            select(m.ReleaseCounter.last_number)
            .where(m.ReleaseCounter.repository == stored(repository), m.ReleaseCounter.project == project)
            .with_for_update()
        )


async def _candidate(
    session: AsyncSession, environment: str, repository: str, project: str, ref: str | None, *, action: str
) -> tuple[Candidate, m.Release]:
    if ref is not None:
        release = await _resolve(session, repository, project, ref)
    elif action == "rollback":
        release = await _previous(session, environment, repository, project)
    else:
        release = await _from_source(session, environment, repository, project)
    run = await _run_of(session, release)
    trigger = release.trigger
    placements = (await session.execute(
        select(m.Deployment.environment, m.Deployment.deployed_at, m.Deployment.status).where(
            m.Deployment.release_id == release.id,
            m.Deployment.status.in_((s.DeploymentStatus.ACTIVE.value, s.DeploymentStatus.SUPERSEDED.value)),
        )
    )).all()
    try:
        facts = ReleaseFacts(
            repository=release.repository,
            project=project,
            number=release.release_number,
            commit=release.commit_sha,
            # The person behind the release: who pushed (the run's trigger), else who recorded it.
            author=run.triggered_by if run else release.created_by,
            trigger=trigger.trigger_type if trigger else s.ReleaseTriggerType.MANUAL.value,
            branch=(trigger.branch if trigger else None) or (run.branch if run else None),
            tag=(trigger.tag if trigger else None) or (run.tag if run else None),
            placements=tuple(
                Placement(environment=env, since=since, active=status == s.DeploymentStatus.ACTIVE.value)
                for env, since, status in placements
            ),
        )
    except ValidationError as error:
        raise InvalidRequest(
            f"release {release.release_number} of {repository} {project} cannot be deployed: "
            f"{error.errors()[0]['msg']}",
            where="release",
        ) from None
    approvals = (await session.execute(
        select(m.ReleaseApproval).where(
            m.ReleaseApproval.release_id == release.id, m.ReleaseApproval.environment == environment
        )
    )).scalars().all()
    candidate = Candidate(
        release_id=release.id,
        facts=facts,
        approvals=tuple(_approval(a) for a in approvals),
        current=await _current(session, environment, repository, project),
        environments=_environments(run),
    )
    return candidate, release


async def _run_of(session: AsyncSession, release: m.Release) -> m.PipelineRun | None:
    return await session.get(m.PipelineRun, release.pipeline_run_id) if release.pipeline_run_id else None


def _environments(run: m.PipelineRun | None) -> Environments:
    return environments_of(run.discovery_output.get("environments") if run and run.discovery_output else None)


async def _from_source(session: AsyncSession, environment: str, repository: str, project: str) -> m.Release:
    """A promotion's default release: the one active where ``environment`` is promoted from (by the
    environments of the project's newest release), or the newest release for the first environment."""
    newest = await session.scalar(
        _release_query().where(m.Release.repository == stored(repository), m.Release.project == project)
        .order_by(m.Release.release_number.desc()).limit(1)
    )
    if newest is None:
        raise NotFound(f"{repository} {project} has no release", where="release")
    environments = _environments(await _run_of(session, newest))
    source = environments.get(environment).from_ if environment in environments.names else None
    if source is None:
        return newest
    active = await session.scalar(_active(source, repository, project))
    if active is None:
        raise NotFound(
            f"{repository} {project} runs nothing in {source}, where {environment} is promoted from; "
            "name the release",
            where="release",
        )
    return active.release


def _active(environment: str, repository: str, project: str) -> Select[m.Deployment]:
    return _deployment_query().where(
        m.Deployment.environment == environment,
        m.Deployment.repository == stored(repository),
        m.Deployment.project == project,
        m.Deployment.status == s.DeploymentStatus.ACTIVE.value,
    )


async def _current(session: AsyncSession, environment: str, repository: str, project: str) -> int | None:
    """The release number the environment runs or is about to run (its newest live deployment)."""
    number = await session.scalar(
        select(m.Release.release_number)
        .join(m.Deployment, m.Deployment.release_id == m.Release.id)
        .where(
            m.Deployment.environment == environment,
            m.Deployment.repository == stored(repository),
            m.Deployment.project == project,
            m.Deployment.status.in_(LIVE),
        )
        .order_by(m.Deployment.deployed_at.desc())
        .limit(1)
    )
    return int(number) if number is not None else None


async def _previous(session: AsyncSession, environment: str, repository: str, project: str) -> m.Release:
    """The release that ran in ``environment`` before the active one (a rollback's default)."""
    active = await session.scalar(_active(environment, repository, project))
    if active is None:
        raise NotFound(f"{repository} {project} has no active deployment in {environment} to roll back",
                       where="environment")
    release_id = await session.scalar(
        select(m.Deployment.release_id)
        .where(
            m.Deployment.environment == environment,
            m.Deployment.repository == stored(repository),
            m.Deployment.project == project,
            m.Deployment.status == s.DeploymentStatus.SUPERSEDED.value,
            m.Deployment.release_id != active.release_id,
        )
        .order_by(m.Deployment.deployed_at.desc())
        .limit(1)
    )
    release = await session.scalar(_release_query().where(m.Release.id == release_id)) if release_id else None
    if release is None:
        raise NotFound(
            f"{repository} {project} ran no other release in {environment} before release "
            f"{active.release.release_number}; name one with --to",
            where="release",
        )
    return release


def _approval(row: m.ReleaseApproval) -> Approval:
    return Approval(
        approver=row.approver,
        environment=row.environment,
        approved_at=row.approved_at,
        roles=frozenset(row.approver_roles or ()),
        groups=frozenset(row.approver_groups or ()),
        expires_at=row.expires_at,
        revoked=row.status == s.ApprovalStatus.REVOKED.value,
    )


def _pending(release: m.Release, environment: str, actor: str, now: datetime) -> m.Deployment:
    row = m.Deployment(
        id=uuid.uuid4(),
        release_id=release.id,
        repository=release.repository,
        project=release.project,
        environment=environment,
        status=s.DeploymentStatus.PENDING.value,
        approval_id=None,
        deployed_at=now,
        deployed_by=actor,
        gitops_commit_sha=None,
    )
    row.release = release
    return row
