"""The Store of the use cases on SQLAlchemy (asyncio): PostgreSQL in a fleet, SQLite embedded."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload, selectinload

from forge_core.adapters.db import models as m
from forge_core.domain.models import RunStatus
from forge_core.services import rules
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, Conflict, InvalidRequest, NotFound

NUMBER = re.compile(r"^[0-9]{1,9}$")
SHA_PREFIX = re.compile(r"^[0-9a-f]{7,64}$")


class SqlStore:
    """Implements :class:`forge_core.services.store.Store`; each method is one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.dialect = engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def run_counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = await session.execute(select(m.PipelineRun.status, func.count()).group_by(m.PipelineRun.status))
            return {status: count for status, count in rows.tuples()}

    # --- runs -----------------------------------------------------------------------------------

    async def create_run(self, data: s.RunCreate, actor: str) -> s.Run:
        try:
            async with self.transaction() as session:
                run = m.PipelineRun(
                    **data.model_dump(exclude={"trigger_type"}),
                    id=uuid.uuid4(),
                    trigger_type=data.trigger_type.value,
                    status=RunStatus.PENDING.value,
                    created_at=m.utcnow(),
                )
                session.add(run)  # inserted with the outbox row and the audit entry at commit
                _commit_status(session, run)
                _audit(session, actor, "run.created", "run", run.id, {"commit_sha": run.commit_sha})
        except IntegrityError:
            existing = await self.find_run(data.repository, data.commit_sha)
            if existing is None:  # the clash was not the one-run-per-commit rule
                raise
            raise Conflict(
                f"a pipeline run for {data.repository}@{data.commit_sha} already exists",
                where="commit_sha",
                details={"run_id": str(existing.id)},
            ) from None
        return _run(run, [])

    async def find_run(self, repository: str, commit_sha: str) -> s.Run | None:
        async with self.sessions() as session:
            query = _run_query().where(
                m.PipelineRun.repository == repository, m.PipelineRun.commit_sha == commit_sha
            )
            run = (await session.execute(query)).unique().scalar_one_or_none()
            return _run(run, run.phases) if run else None

    async def get_run(self, run_id: uuid.UUID) -> s.Run:
        async with self.sessions() as session:
            run = (await session.execute(_run_query().where(m.PipelineRun.id == run_id))).unique().scalar_one_or_none()
            if run is None:
                raise NotFound(f"pipeline run {run_id} does not exist", where="run_id")
            return _run(run, run.phases)

    async def list_runs(
        self, page: s.Page, *, repository: str | None, branch: str | None, status: RunStatus | None
    ) -> s.RunList:
        query = select(m.PipelineRun)
        if repository is not None:
            query = query.where(m.PipelineRun.repository == repository)
        if branch is not None:
            query = query.where(m.PipelineRun.branch == branch)
        if status is not None:
            query = query.where(m.PipelineRun.status == status.value)
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, m.PipelineRun.created_at.desc(), m.PipelineRun.id)
            return s.RunList(
                runs=[s.RunSummary.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
            )

    async def record_plan(self, run_id: uuid.UUID, plan: s.RunPlan, actor: str) -> s.RecordedPlan:
        _unique([p.name for p in plan.phases], "phases[].name")
        try:
            async with self.transaction() as session:
                run = await _locked(session, m.PipelineRun, run_id, "pipeline run")
                if RunStatus(run.status) in s.FINAL_STATUSES:
                    raise Conflict(f"pipeline run {run_id} is already {run.status}", where="run_id")
                existing = await session.scalar(
                    select(func.count()).select_from(m.PhaseExecution).where(m.PhaseExecution.pipeline_run_id == run_id)
                )
                if existing:
                    raise Conflict(f"pipeline run {run_id} already has a plan", where="run_id")
                phases = []
                for phase_plan in plan.phases:
                    phase = m.PhaseExecution(
                        id=uuid.uuid4(), pipeline_run_id=run_id, phase_name=phase_plan.name,
                        group_number=phase_plan.group_number, status="pending",
                    )
                    _unique([t.project_name for t in phase_plan.tasks], f"phases[{phase_plan.name}].tasks[].project_name")
                    tasks = []
                    for task_plan in phase_plan.tasks:
                        task = m.TaskExecution(
                            id=uuid.uuid4(), phase_execution_id=phase.id, key=task_plan.key,
                            project_name=task_plan.project_name, project_path=task_plan.project_path, status="pending",
                        )
                        _unique([st.name for st in task_plan.steps], f"tasks[{task_plan.key}].steps[].name")
                        steps = [
                            m.StepExecution(
                                id=uuid.uuid4(), task_execution_id=task.id, position=i, step_name=st.name,
                                action=st.action, target=st.target, timeout_seconds=st.timeout_seconds,
                                status="pending",
                            )
                            for i, st in enumerate(task_plan.steps)
                        ]
                        tasks.append((task, steps))
                    phases.append((phase, tasks))
                session.add_all([p for p, _ in phases])
                await session.flush()
                session.add_all([t for _, ts in phases for t, _ in ts])
                await session.flush()
                session.add_all([st for _, ts in phases for _, sts in ts for st in sts])
                _audit(session, actor, "run.planned", "run", run_id, {"phases": len(phases)})
        except IntegrityError as exc:
            raise Conflict(f"the plan of run {run_id} clashes with stored state: {exc.orig}", where="phases") from None
        return s.RecordedPlan(
            phases=[
                _phase(p, [_task(t, [_step(st) for st in sts]) for t, sts in ts]) for p, ts in phases
            ]
        )

    async def set_run_status(
        self, run_id: uuid.UUID, update: s.RunStatusUpdate, actor: str
    ) -> tuple[RunStatus, s.RunSummary]:
        async with self.transaction() as session:
            run = await _locked(session, m.PipelineRun, run_id, "pipeline run")
            before = RunStatus(run.status)
            change = rules.transition("run", run_id, run.status, update.status, m.utcnow())
            if change.changed:
                _apply(run, update.status.value, change)
                run.error = update.error if update.error is not None else run.error
                if update.status == RunStatus.CANCELLED:
                    await _cancel_children(session, run_id)
                _commit_status(session, run)
                _audit(session, actor, "run.status", "run", run_id, {"from": before.value, "to": run.status})
            return before, s.RunSummary.model_validate(run)

    async def set_phase_status(self, phase_id: uuid.UUID, update: s.PhaseStatusUpdate, actor: str) -> None:
        async with self.transaction() as session:
            phase = await _locked(session, m.PhaseExecution, phase_id, "phase")
            await _require_run_open(session, phase.pipeline_run_id)
            change = rules.transition("phase", phase_id, phase.status, update.status, m.utcnow())
            if change.changed:
                _audit(session, actor, "phase.status", "phase", phase_id, {"from": phase.status, "to": update.status.value})
                _apply(phase, update.status.value, change)

    async def set_task_status(self, task_id: uuid.UUID, update: s.TaskStatusUpdate, actor: str) -> None:
        async with self.transaction() as session:
            task = await _locked(session, m.TaskExecution, task_id, "task")
            run_id = await session.scalar(
                select(m.PhaseExecution.pipeline_run_id).where(m.PhaseExecution.id == task.phase_execution_id)
            )
            await _require_run_open(session, run_id)
            change = rules.transition("task", task_id, task.status, update.status, m.utcnow())
            if change.changed:
                _audit(session, actor, "task.status", "task", task_id, {"from": task.status, "to": update.status.value})
                _apply(task, update.status.value, change)
                task.error = update.error if update.error is not None else task.error

    async def set_step_status(self, step_id: uuid.UUID, update: s.StepStatusUpdate, actor: str) -> None:
        async with self.transaction() as session:
            step = await _locked(session, m.StepExecution, step_id, "step")
            run_id = await session.scalar(
                select(m.PhaseExecution.pipeline_run_id)
                .join(m.TaskExecution, m.TaskExecution.phase_execution_id == m.PhaseExecution.id)
                .where(m.TaskExecution.id == step.task_execution_id)
            )
            await _require_run_open(session, run_id)
            change = rules.transition("step", step_id, step.status, update.status, m.utcnow())
            if change.changed:
                _audit(session, actor, "step.status", "step", step_id, {"from": step.status, "to": update.status.value})
                _apply(step, update.status.value, change)
            if update.exit_code is not None:
                step.exit_code = update.exit_code
            if update.logs_s3_key is not None:
                step.logs_s3_key = update.logs_s3_key

    # --- releases -------------------------------------------------------------------------------

    async def create_release(self, data: s.ReleaseCreate, actor: str) -> s.Release:
        _unique([a.name for a in data.artifacts], "artifacts[].name")
        try:
            async with self.transaction() as session:
                if data.pipeline_run_id is not None:
                    run = await session.get(m.PipelineRun, data.pipeline_run_id)
                    if run is None:
                        raise NotFound(f"pipeline run {data.pipeline_run_id} does not exist", where="pipeline_run_id")
                    if run.repository != data.repository:
                        raise InvalidRequest(
                            f"pipeline run {run.id} is of repository {run.repository}, not {data.repository}",
                            where="pipeline_run_id",
                        )
                number = await self._next_number(session, data.repository, data.project)
                release = m.Release(
                    id=uuid.uuid4(), repository=data.repository, project=data.project, commit_sha=data.commit_sha,
                    release_number=number, pipeline_run_id=data.pipeline_run_id, oci_uri=data.oci_uri,
                    oci_digest=data.oci_digest, created_by=actor, created_at=m.utcnow(),
                )
                session.add(release)
                await session.flush()
                session.add(
                    m.ReleaseTrigger(
                        release_id=release.id, trigger_type=data.trigger.trigger_type.value,
                        branch=data.trigger.branch, tag=data.trigger.tag, triggered_by=actor, triggered_at=m.utcnow(),
                    )
                )
                session.add_all(
                    m.ReleaseArtifact(
                        release_id=release.id, artifact_name=a.name, artifact_type=a.type,
                        tracking_oci_uri=a.tracking_oci_uri, tracking_oci_digest=a.tracking_oci_digest,
                        primary_published_uri=a.primary_published_uri,
                    )
                    for a in data.artifacts
                )
                session.add(_alias(release, str(number), s.AliasType.NUMERIC))
                if data.trigger.tag:
                    await _point_alias(session, release, data.trigger.tag, s.AliasType.TAG)
                _audit(session, actor, "release.created", "release", release.id, {"number": number})
                release_id = release.id
        except IntegrityError:
            raise Conflict(
                f"a release of {data.repository}/{data.project} at {data.commit_sha} already exists",
                where="commit_sha",
            ) from None
        return await self.get_release_by_id(release_id)

    async def _next_number(self, session: AsyncSession, repository: str, project: str) -> int:
        """Increment the project's counter; its row stays locked until commit, so numbers are
        handed out one transaction at a time and a rolled-back release gives its number back."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(m.ReleaseCounter).values(repository=repository, project=project, last_number=1)
        statement = statement.on_conflict_do_update(
            index_elements=["repository", "project"],
            set_={"last_number": m.ReleaseCounter.last_number + 1},
        ).returning(m.ReleaseCounter.last_number)
        return int((await session.execute(statement)).scalar_one())

    async def get_release(self, repository: str, project: str, ref: str) -> s.Release:
        async with self.sessions() as session:
            release = await _resolve(session, repository, project, ref)
            return _release(release)

    async def get_release_by_id(self, release_id: uuid.UUID) -> s.Release:
        async with self.sessions() as session:
            release = (await session.execute(_release_query().where(m.Release.id == release_id))).scalar_one_or_none()
            if release is None:
                raise NotFound(f"release {release_id} does not exist", where="release_id")
            return _release(release)

    async def list_releases(self, repository: str, project: str, page: s.Page) -> s.ReleaseList:
        query = select(m.Release).where(m.Release.repository == repository, m.Release.project == project)
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, m.Release.release_number.desc())
            return s.ReleaseList(
                releases=[s.ReleaseSummary.model_validate(r) for r in rows],
                total=total, limit=page.limit, offset=page.offset,
            )

    async def set_alias(self, repository: str, project: str, alias: str, data: s.AliasSet, actor: str) -> s.Release:
        if data.alias_type == s.AliasType.NUMERIC or NUMBER.match(alias):
            raise InvalidRequest("numeric aliases are the release numbers; they cannot be set", where="alias")
        async with self.transaction() as session:
            release = await _resolve(session, repository, project, data.release)
            await _point_alias(session, release, alias, data.alias_type)
            _audit(session, actor, "alias.set", "release", release.id, {"alias": alias})
            release_id = release.id
        return await self.get_release_by_id(release_id)

    async def delete_alias(self, repository: str, project: str, alias: str, actor: str) -> None:
        async with self.transaction() as session:
            row = await session.scalar(
                select(m.ReleaseAlias).where(
                    m.ReleaseAlias.repository == repository, m.ReleaseAlias.project == project,
                    m.ReleaseAlias.alias == alias,
                )
            )
            if row is None:
                raise NotFound(f"alias {alias!r} of {repository}/{project} does not exist", where="alias")
            if row.alias_type == s.AliasType.NUMERIC.value:
                raise InvalidRequest("numeric aliases are the release numbers; they cannot be deleted", where="alias")
            await session.delete(row)
            _audit(session, actor, "alias.deleted", "release", row.release_id, {"alias": alias})

    # --- deployments and approvals --------------------------------------------------------------

    async def create_deployment(
        self, data: s.DeploymentCreate, actor: str, *, approval_required: bool
    ) -> tuple[s.Deployment, s.Deployment | None]:
        now = m.utcnow()
        try:
            async with self.transaction() as session:
                release = await session.get(m.Release, data.release_id)
                if release is None:
                    raise NotFound(f"release {data.release_id} does not exist", where="release_id")
                approval = await _usable_approval(session, data, now) if approval_required or data.approval_id else None
                if approval_required and approval is None:
                    raise AuthorizationFailed(
                        f"deploying to {data.environment} needs an active approval of release {release.id}",
                        where="approval_id",
                        details={"environment": data.environment, "release_id": str(release.id)},
                    )
                previous = await session.scalar(
                    _deployment_query()
                    .where(
                        m.Deployment.environment == data.environment, m.Deployment.repository == release.repository,
                        m.Deployment.project == release.project, m.Deployment.status == "active",
                    )
                    .with_for_update()
                )
                if previous is not None:
                    previous.status = s.DeploymentStatus.SUPERSEDED.value
                    await session.flush()
                deployment = m.Deployment(
                    id=uuid.uuid4(), release_id=release.id, repository=release.repository, project=release.project,
                    environment=data.environment, status=s.DeploymentStatus.ACTIVE.value,
                    approval_id=approval.id if approval else None, deployed_at=now, deployed_by=actor,
                    gitops_commit_sha=data.gitops_commit_sha,
                )
                deployment.release = release
                session.add(deployment)
                _audit(session, actor, "deployment.created", "deployment", deployment.id,
                       {"environment": data.environment, "release_id": str(release.id)})
        except IntegrityError:
            raise Conflict(
                f"another deployment to {data.environment} was created at the same time; retry",
                where="environment",
            ) from None
        return _deployment(deployment), _deployment(previous) if previous else None

    async def current_deployment(self, environment: str, repository: str, project: str) -> s.Deployment:
        async with self.sessions() as session:
            row = await session.scalar(
                _deployment_query().where(
                    m.Deployment.environment == environment, m.Deployment.repository == repository,
                    m.Deployment.project == project, m.Deployment.status == "active",
                )
            )
            if row is None:
                raise NotFound(f"{repository}/{project} has no active deployment in {environment}", where="environment")
            return _deployment(row)

    async def deployment_history(
        self, environment: str, repository: str, project: str, page: s.Page
    ) -> s.DeploymentList:
        query = _deployment_query().where(
            m.Deployment.environment == environment, m.Deployment.repository == repository,
            m.Deployment.project == project,
        )
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, m.Deployment.deployed_at.desc(), m.Deployment.id)
            return s.DeploymentList(
                deployments=[_deployment(d) for d in rows], total=total, limit=page.limit, offset=page.offset
            )

    async def create_approval(self, data: s.ApprovalCreate, actor: str) -> s.Approval:
        now = m.utcnow()
        if data.expires_at is not None and data.expires_at.tzinfo is None:
            raise InvalidRequest("expires_at needs a time zone (e.g. 'Z')", where="expires_at")
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidRequest("expires_at is in the past", where="expires_at")
        async with self.transaction() as session:
            if await session.get(m.Release, data.release_id) is None:
                raise NotFound(f"release {data.release_id} does not exist", where="release_id")
            approval = m.ReleaseApproval(
                id=uuid.uuid4(), release_id=data.release_id, environment=data.environment, approver=actor,
                approved_at=now, expires_at=data.expires_at, justification=data.justification, status="active",
            )
            session.add(approval)
            _audit(session, actor, "approval.created", "approval", approval.id, {"environment": data.environment})
        return _approval(approval, now)

    async def revoke_approval(self, approval_id: uuid.UUID, actor: str) -> s.Approval:
        now = m.utcnow()
        async with self.transaction() as session:
            approval = await _locked(session, m.ReleaseApproval, approval_id, "approval")
            if approval.status == s.ApprovalStatus.REVOKED.value:
                raise Conflict(f"approval {approval_id} is already revoked", where="approval_id")
            approval.status, approval.revoked_at, approval.revoked_by = "revoked", now, actor
            _audit(session, actor, "approval.revoked", "approval", approval_id, {})
        return _approval(approval, now)

    async def active_approval(self, release_id: uuid.UUID, environment: str) -> s.Approval:
        now = m.utcnow()
        async with self.sessions() as session:
            approval = await session.scalar(_active_approvals(now).where(
                m.ReleaseApproval.release_id == release_id, m.ReleaseApproval.environment == environment
            ))
            if approval is None:
                raise NotFound(f"release {release_id} has no active approval for {environment}", where="environment")
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
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, m.ReleaseApproval.approved_at.desc(), m.ReleaseApproval.id)
            return s.ApprovalList(
                approvals=[_approval(a, now) for a in rows], total=total, limit=page.limit, offset=page.offset
            )

    # --- outbox ---------------------------------------------------------------------------------

    async def claim_outbox(self, now: datetime, limit: int) -> list[s.OutboxMessage]:
        earlier = m.OutboxMessage.__table__.alias("earlier")
        head = ~(
            select(earlier.c.id)
            .where(earlier.c.key == m.OutboxMessage.key, earlier.c.delivered_at.is_(None), earlier.c.id < m.OutboxMessage.id)
            .exists()
        )
        query = (
            select(m.OutboxMessage)
            .where(m.OutboxMessage.delivered_at.is_(None), m.OutboxMessage.next_attempt_at <= now, head)
            .order_by(m.OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.transaction() as session:
            rows = (await session.execute(query)).scalars().all()
            return [s.OutboxMessage.model_validate(r) for r in rows]

    async def outbox_delivered(self, message_id: int, now: datetime) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.id == message_id)
                .values(delivered_at=now, attempts=m.OutboxMessage.attempts + 1, last_error=None)
            )

    async def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.id == message_id)
                .values(next_attempt_at=retry_at, attempts=m.OutboxMessage.attempts + 1, last_error=error[:2000])
            )

    async def outbox_pending(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(m.OutboxMessage).where(m.OutboxMessage.delivered_at.is_(None))
            )
            return int(count or 0)

    async def purge_delivered(self, before: datetime) -> None:
        async with self.transaction() as session:
            await session.execute(
                delete(m.OutboxMessage).where(m.OutboxMessage.delivered_at.is_not(None), m.OutboxMessage.delivered_at < before)
            )


# --- helpers ------------------------------------------------------------------------------------


def _run_query() -> Select[tuple[m.PipelineRun]]:
    # One round trip for the whole tree (the rows repeat the run; a run has tens of steps).
    return select(m.PipelineRun).options(
        joinedload(m.PipelineRun.phases).joinedload(m.PhaseExecution.tasks).joinedload(m.TaskExecution.steps)
    )


def _release_query() -> Select[tuple[m.Release]]:
    return select(m.Release).options(
        selectinload(m.Release.aliases), selectinload(m.Release.artifacts), selectinload(m.Release.trigger)
    )


def _deployment_query() -> Select[tuple[m.Deployment]]:
    return select(m.Deployment).options(selectinload(m.Deployment.release))


def _active_approvals(now: datetime) -> Select[tuple[m.ReleaseApproval]]:
    return (
        select(m.ReleaseApproval)
        .where(
            m.ReleaseApproval.status == "active",
            (m.ReleaseApproval.expires_at.is_(None)) | (m.ReleaseApproval.expires_at > now),
        )
        .order_by(m.ReleaseApproval.approved_at.desc())
    )


async def _usable_approval(session: AsyncSession, data: s.DeploymentCreate, now: datetime) -> m.ReleaseApproval | None:
    query = _active_approvals(now).where(
        m.ReleaseApproval.release_id == data.release_id, m.ReleaseApproval.environment == data.environment
    )
    if data.approval_id is not None:
        approval = await session.scalar(query.where(m.ReleaseApproval.id == data.approval_id))
        if approval is None:
            raise AuthorizationFailed(
                f"approval {data.approval_id} is not an active approval of release {data.release_id} "
                f"for {data.environment}",
                where="approval_id",
            )
        return approval
    return await session.scalar(query.limit(1))


async def _paged(
    session: AsyncSession, query: Select[Any], page: s.Page, *order: Any
) -> tuple[int, Sequence[Any]]:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = (await session.execute(query.order_by(*order).limit(page.limit).offset(page.offset))).scalars().all()
    return int(total or 0), rows


async def _locked(session: AsyncSession, model: type[Any], entity_id: uuid.UUID, what: str) -> Any:
    entity = await session.get(model, entity_id, with_for_update=True)
    if entity is None:
        raise NotFound(f"{what} {entity_id} does not exist", where="id")
    return entity


async def _require_run_open(session: AsyncSession, run_id: uuid.UUID | None) -> None:
    status = await session.scalar(select(m.PipelineRun.status).where(m.PipelineRun.id == run_id))
    if status is not None and RunStatus(status) == RunStatus.CANCELLED:
        raise Conflict(f"pipeline run {run_id} was cancelled", where="run_id", details={"run_id": str(run_id)})


async def _cancel_children(session: AsyncSession, run_id: uuid.UUID) -> None:
    now = m.utcnow()
    open_statuses = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
    phase_ids = select(m.PhaseExecution.id).where(m.PhaseExecution.pipeline_run_id == run_id).scalar_subquery()
    task_ids = select(m.TaskExecution.id).where(m.TaskExecution.phase_execution_id.in_(phase_ids)).scalar_subquery()
    for model, scope in (
        (m.PhaseExecution, m.PhaseExecution.pipeline_run_id == run_id),
        (m.TaskExecution, m.TaskExecution.phase_execution_id.in_(phase_ids)),
        (m.StepExecution, m.StepExecution.task_execution_id.in_(task_ids)),
    ):
        await session.execute(
            update(model)
            .where(scope, model.status.in_(open_statuses))
            .values(status=RunStatus.CANCELLED.value, completed_at=now)
            .execution_options(synchronize_session=False)
        )


def _apply(entity: Any, status: str, change: rules.Transition) -> None:
    entity.status = status
    if change.started_at is not None and entity.started_at is None:
        entity.started_at = change.started_at
    if change.completed_at is not None:
        entity.completed_at = change.completed_at


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidRequest(f"{name!r} appears twice", where=where)
        seen.add(name)


def _audit(session: AsyncSession, actor: str, action: str, entity_type: str, entity_id: object, details: dict[str, Any]) -> None:
    session.add(
        m.AuditEntry(actor=actor, action=action, entity_type=entity_type, entity_id=str(entity_id), details=details, at=m.utcnow())
    )


def _commit_status(session: AsyncSession, run: m.PipelineRun) -> None:
    session.add(
        m.OutboxMessage(
            key=rules.commit_status_key(run.repository, run.commit_sha),
            kind=rules.COMMIT_STATUS_KIND,
            payload=rules.commit_status_payload(run.id, run.repository, run.commit_sha, RunStatus(run.status)),
            created_at=m.utcnow(),
            next_attempt_at=m.utcnow(),
            attempts=0,
        )
    )


def _alias(release: m.Release, alias: str, alias_type: s.AliasType) -> m.ReleaseAlias:
    return m.ReleaseAlias(
        release_id=release.id, repository=release.repository, project=release.project, alias=alias,
        alias_type=alias_type.value,
    )


async def _point_alias(session: AsyncSession, release: m.Release, alias: str, alias_type: s.AliasType) -> None:
    """Create the alias on ``release``, or move it there from the release it named before."""
    row = await session.scalar(
        select(m.ReleaseAlias)
        .where(
            m.ReleaseAlias.repository == release.repository, m.ReleaseAlias.project == release.project,
            m.ReleaseAlias.alias == alias,
        )
        .with_for_update()
    )
    if row is None:
        session.add(_alias(release, alias, alias_type))
    else:
        row.release_id, row.alias_type = release.id, alias_type.value
    await session.flush()


async def _resolve(session: AsyncSession, repository: str, project: str, ref: str) -> m.Release:
    """A release by number, commit SHA (or a unique prefix of at least 7) or alias."""
    base = _release_query().where(m.Release.repository == repository, m.Release.project == project)
    found: m.Release | None = None
    if NUMBER.match(ref):
        found = await session.scalar(base.where(m.Release.release_number == int(ref)))
    if found is None and SHA_PREFIX.match(ref.lower()):
        matches = (await session.execute(base.where(m.Release.commit_sha.startswith(ref.lower())).limit(2))).scalars().all()
        if len(matches) > 1:
            raise InvalidRequest(f"commit prefix {ref!r} names more than one release; give more digits", where="release")
        found = matches[0] if matches else None
    if found is None:
        alias_of = select(m.ReleaseAlias.release_id).where(
            m.ReleaseAlias.repository == repository, m.ReleaseAlias.project == project, m.ReleaseAlias.alias == ref
        )
        found = await session.scalar(base.where(m.Release.id.in_(alias_of.scalar_subquery())))
    if found is None:
        raise NotFound(f"{repository}/{project} has no release {ref!r}", where="release")
    return found


def _step(row: m.StepExecution) -> s.Step:
    return s.Step(
        id=row.id, name=row.step_name, action=row.action, target=row.target, timeout_seconds=row.timeout_seconds,
        status=RunStatus(row.status), exit_code=row.exit_code, logs_s3_key=row.logs_s3_key,
        started_at=row.started_at, completed_at=row.completed_at,
    )


def _task(row: m.TaskExecution, steps: list[s.Step]) -> s.Task:
    return s.Task(
        id=row.id, key=row.key, project_name=row.project_name, project_path=row.project_path,
        status=RunStatus(row.status), error=row.error, started_at=row.started_at, completed_at=row.completed_at,
        steps=steps,
    )


def _phase(row: m.PhaseExecution, tasks: list[s.Task]) -> s.Phase:
    return s.Phase(
        id=row.id, name=row.phase_name, group_number=row.group_number, status=RunStatus(row.status),
        started_at=row.started_at, completed_at=row.completed_at, tasks=tasks,
    )


def _run(row: m.PipelineRun, phases: Sequence[m.PhaseExecution]) -> s.Run:
    summary = s.RunSummary.model_validate(row)
    return s.Run(
        **summary.__dict__,
        phases=[_phase(p, [_task(t, [_step(st) for st in t.steps]) for t in p.tasks]) for p in phases],
    )


def _release(row: m.Release) -> s.Release:
    trigger = s.ReleaseTrigger.model_validate(row.trigger) if row.trigger else None
    return s.Release(
        id=row.id, repository=row.repository, project=row.project, commit_sha=row.commit_sha,
        release_number=row.release_number, created_at=row.created_at,
        canonical_id=f"{row.repository}/{row.project}/{row.commit_sha}", pipeline_run_id=row.pipeline_run_id,
        oci_uri=row.oci_uri, oci_digest=row.oci_digest, created_by=row.created_by,
        artifacts=[
            s.Artifact(
                name=a.artifact_name, type=a.artifact_type, tracking_oci_uri=a.tracking_oci_uri,
                tracking_oci_digest=a.tracking_oci_digest, primary_published_uri=a.primary_published_uri,
            )
            for a in row.artifacts
        ],
        aliases=[s.Alias(alias=a.alias, alias_type=s.AliasType(a.alias_type)) for a in row.aliases],
        trigger=trigger,
    )


def _deployment(row: m.Deployment) -> s.Deployment:
    return s.Deployment(
        id=row.id, release_id=row.release_id, repository=row.repository, project=row.project,
        release_number=row.release.release_number, environment=row.environment,
        status=s.DeploymentStatus(row.status), approval_id=row.approval_id, deployed_at=row.deployed_at,
        deployed_by=row.deployed_by, gitops_commit_sha=row.gitops_commit_sha,
    )


def _approval(row: m.ReleaseApproval, now: datetime) -> s.Approval:
    status = row.status
    if status == "active" and row.expires_at is not None and row.expires_at <= now:
        status = s.ApprovalStatus.EXPIRED.value
    return s.Approval(
        id=row.id, release_id=row.release_id, environment=row.environment, approver=row.approver,
        approved_at=row.approved_at, expires_at=row.expires_at, justification=row.justification,
        status=s.ApprovalStatus(status),
    )
