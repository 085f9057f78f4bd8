"""The Store of the use cases on SQLAlchemy (asyncio): PostgreSQL in a fleet, SQLite embedded."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload, selectinload

from forge_core.adapters.db import models as m
from forge_core.domain.models import RunStatus
from forge_core.domain.run_plan import ArtifactPlan, RunPlan
from forge_core.services import rules
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, Conflict, InvalidRequest, NotFound

NUMBER = re.compile(r"^[0-9]{1,9}$")
SHA_PREFIX = re.compile(r"^[0-9a-f]{7,64}$")
OPEN_STATUSES = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
OUTBOX_LOCK = 0x466F726765  # "Forge": the advisory lock of the outbox sender


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
        query = select(m.PipelineRun.status, func.count()).group_by(m.PipelineRun.status)
        async with self.sessions() as session:
            return {row[0]: row[1] for row in (await session.execute(query)).all()}

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
        query = _run_query().where(
            m.PipelineRun.repository == repository, m.PipelineRun.commit_sha == commit_sha
        )
        async with self.sessions() as session:
            run = (await session.execute(query)).unique().scalar_one_or_none()
            return _run(run, run.phases) if run else None

    async def get_run(self, run_id: uuid.UUID) -> s.Run:
        query = _run_query().where(m.PipelineRun.id == run_id)
        async with self.sessions() as session:
            run = (await session.execute(query)).unique().scalar_one_or_none()
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
        order = (m.PipelineRun.created_at.desc(), m.PipelineRun.id)
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, *order)
            return s.RunList(
                runs=[s.RunSummary.model_validate(r) for r in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )

    async def record_plan(self, run_id: uuid.UUID, plan: RunPlan, actor: str) -> s.RecordedPlan:
        phases = _plan_rows(run_id, plan)
        try:
            async with self.transaction() as session:
                run = await _locked(session, m.PipelineRun, run_id, "pipeline run")
                if RunStatus(run.status) in s.FINAL_STATUSES:
                    raise Conflict(f"pipeline run {run_id} is already {run.status}", where="run_id")
                planned = await session.scalar(
                    select(func.count())
                    .select_from(m.PhaseExecution)
                    .where(m.PhaseExecution.pipeline_run_id == run_id)
                )
                if planned:
                    raise Conflict(f"pipeline run {run_id} already has a plan", where="run_id")
                run.plan_artifacts = [a.model_dump(mode="json") for a in plan.artifacts]
                # Parents first: the rows reference each other by foreign key.
                session.add_all([phase for phase, _ in phases])
                await session.flush()
                session.add_all([task for _, tasks in phases for task, _ in tasks])
                await session.flush()
                session.add_all([st for _, tasks in phases for _, steps in tasks for st in steps])
                _audit(session, actor, "run.planned", "run", run_id, {"phases": len(phases)})
        except IntegrityError as exc:
            raise Conflict(
                f"the plan of run {run_id} clashes with stored state: {exc.orig}", where="phases"
            ) from None
        return s.RecordedPlan(
            phases=tuple(
                _phase(phase, [_task(task, [_step(st) for st in steps]) for task, steps in tasks])
                for phase, tasks in phases
            ),
            artifacts=plan.artifacts,
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
                changed = {"from": before.value, "to": run.status}
                _audit(session, actor, "run.status", "run", run_id, changed)
            return before, s.RunSummary.model_validate(run)

    async def set_phase_status(
        self, phase_id: uuid.UUID, update: s.PhaseStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            phase = await _locked(session, m.PhaseExecution, phase_id, "phase")
            await _require_run_open(session, phase.pipeline_run_id)
            _change(session, actor, "phase", phase, update.status)

    async def set_task_status(
        self, task_id: uuid.UUID, update: s.TaskStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            task = await _locked(session, m.TaskExecution, task_id, "task")
            run_id = await session.scalar(
                select(m.PhaseExecution.pipeline_run_id).where(
                    m.PhaseExecution.id == task.phase_execution_id
                )
            )
            await _require_run_open(session, run_id)
            if _change(session, actor, "task", task, update.status) and update.error is not None:
                task.error = update.error

    async def set_step_status(
        self, step_id: uuid.UUID, update: s.StepStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            step = await _locked(session, m.StepExecution, step_id, "step")
            run_id = await session.scalar(
                select(m.PhaseExecution.pipeline_run_id)
                .join(m.TaskExecution, m.TaskExecution.phase_execution_id == m.PhaseExecution.id)
                .where(m.TaskExecution.id == step.task_execution_id)
            )
            await _require_run_open(session, run_id)
            _change(session, actor, "step", step, update.status)
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
                    await _check_run_of(session, data.pipeline_run_id, data.repository)
                number = await self._next_number(session, data.repository, data.project)
                release = m.Release(
                    id=uuid.uuid4(),
                    repository=data.repository,
                    project=data.project,
                    commit_sha=data.commit_sha,
                    release_number=number,
                    pipeline_run_id=data.pipeline_run_id,
                    oci_uri=data.oci_uri,
                    oci_digest=data.oci_digest,
                    created_by=actor,
                    created_at=m.utcnow(),
                )
                session.add(release)
                await session.flush()
                session.add(
                    m.ReleaseTrigger(
                        release_id=release.id,
                        trigger_type=data.trigger.trigger_type.value,
                        branch=data.trigger.branch,
                        tag=data.trigger.tag,
                        triggered_by=actor,
                        triggered_at=m.utcnow(),
                    )
                )
                session.add_all(_artifact(release.id, artifact) for artifact in data.artifacts)
                session.add(_alias(release, str(number), s.AliasType.NUMERIC))
                if data.trigger.tag:
                    await _point_alias(session, release, data.trigger.tag, s.AliasType.TAG)
                _audit(session, actor, "release.created", "release", release.id, {"number": number})
                release_id = release.id
        except IntegrityError:
            raise Conflict(
                f"a release of {data.repository}/{data.project} at {data.commit_sha} "
                "already exists",
                where="commit_sha",
            ) from None
        return await self.get_release_by_id(release_id)

    async def _next_number(self, session: AsyncSession, repository: str, project: str) -> int:
        """Increment the project's counter; its row stays locked until commit, so numbers are
        handed out one transaction at a time and a rolled-back release gives its number back."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        values = {"repository": repository, "project": project, "last_number": 1}
        statement = (
            insert(m.ReleaseCounter)
            .values(values)
            .on_conflict_do_update(
                index_elements=["repository", "project"],
                set_={"last_number": m.ReleaseCounter.last_number + 1},
            )
            .returning(m.ReleaseCounter.last_number)
        )
        return int((await session.execute(statement)).scalar_one())

    async def get_release(self, repository: str, project: str, ref: str) -> s.Release:
        async with self.sessions() as session:
            return _release(await _resolve(session, repository, project, ref))

    async def get_release_by_id(self, release_id: uuid.UUID) -> s.Release:
        async with self.sessions() as session:
            release = await session.scalar(_release_query().where(m.Release.id == release_id))
            if release is None:
                raise NotFound(f"release {release_id} does not exist", where="release_id")
            return _release(release)

    async def list_releases(self, repository: str, project: str, page: s.Page) -> s.ReleaseList:
        query = select(m.Release).where(
            m.Release.repository == repository, m.Release.project == project
        )
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, m.Release.release_number.desc())
            return s.ReleaseList(
                releases=[s.ReleaseSummary.model_validate(r) for r in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )

    async def set_alias(
        self, repository: str, project: str, alias: str, data: s.AliasSet, actor: str
    ) -> s.Release:
        if data.alias_type == s.AliasType.NUMERIC or NUMBER.match(alias):
            raise InvalidRequest(
                "numeric aliases are the release numbers; they cannot be set", where="alias"
            )
        async with self.transaction() as session:
            release = await _resolve(session, repository, project, data.release)
            await _point_alias(session, release, alias, data.alias_type)
            _audit(session, actor, "alias.set", "release", release.id, {"alias": alias})
            release_id = release.id
        return await self.get_release_by_id(release_id)

    async def delete_alias(self, repository: str, project: str, alias: str, actor: str) -> None:
        async with self.transaction() as session:
            row = await session.scalar(_alias_query(repository, project, alias))
            if row is None:
                raise NotFound(
                    f"alias {alias!r} of {repository}/{project} does not exist", where="alias"
                )
            if row.alias_type == s.AliasType.NUMERIC.value:
                raise InvalidRequest(
                    "numeric aliases are the release numbers; they cannot be deleted", where="alias"
                )
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
                previous = await session.scalar(
                    _active_deployment(data.environment, release.repository, release.project)
                    .with_for_update()
                )
                if previous is not None:
                    previous.status = s.DeploymentStatus.SUPERSEDED.value
                    await session.flush()  # before the new row takes the one active place
                deployment = m.Deployment(
                    id=uuid.uuid4(),
                    release_id=release.id,
                    repository=release.repository,
                    project=release.project,
                    environment=data.environment,
                    status=s.DeploymentStatus.ACTIVE.value,
                    approval_id=approval.id if approval else None,
                    deployed_at=now,
                    deployed_by=actor,
                    gitops_commit_sha=data.gitops_commit_sha,
                )
                deployment.release = release
                session.add(deployment)
                details = {"environment": data.environment, "release_id": str(release.id)}
                _audit(session, actor, "deployment.created", "deployment", deployment.id, details)
        except IntegrityError:
            raise Conflict(
                f"another deployment to {data.environment} was created at the same time; retry",
                where="environment",
            ) from None
        return _deployment(deployment), _deployment(previous) if previous else None

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

    async def deployment_history(
        self, environment: str, repository: str, project: str, page: s.Page
    ) -> s.DeploymentList:
        query = _deployment_query().where(
            m.Deployment.environment == environment,
            m.Deployment.repository == repository,
            m.Deployment.project == project,
        )
        order = (m.Deployment.deployed_at.desc(), m.Deployment.id)
        async with self.sessions() as session:
            total, rows = await _paged(session, query, page, *order)
            return s.DeploymentList(
                deployments=[_deployment(d) for d in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
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
                id=uuid.uuid4(),
                release_id=data.release_id,
                environment=data.environment,
                approver=actor,
                approved_at=now,
                expires_at=data.expires_at,
                justification=data.justification,
                status=s.ApprovalStatus.ACTIVE.value,
            )
            session.add(approval)
            details = {"environment": data.environment}
            _audit(session, actor, "approval.created", "approval", approval.id, details)
        return _approval(approval, now)

    async def revoke_approval(self, approval_id: uuid.UUID, actor: str) -> s.Approval:
        now = m.utcnow()
        async with self.transaction() as session:
            approval = await _locked(session, m.ReleaseApproval, approval_id, "approval")
            if approval.status == s.ApprovalStatus.REVOKED.value:
                raise Conflict(f"approval {approval_id} is already revoked", where="approval_id")
            approval.status = s.ApprovalStatus.REVOKED.value
            approval.revoked_at, approval.revoked_by = now, actor
            _audit(session, actor, "approval.revoked", "approval", approval_id, {})
        return _approval(approval, now)

    async def active_approval(self, release_id: uuid.UUID, environment: str) -> s.Approval:
        now = m.utcnow()
        query = _active_approvals(now).where(
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
            total, rows = await _paged(session, query, page, *order)
            return s.ApprovalList(
                approvals=[_approval(a, now) for a in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )

    # --- outbox ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def outbox_turn(self) -> AsyncIterator[bool]:
        """True for one sender at a time (a PostgreSQL advisory lock), so that API replicas and
        ``forge notifier`` never send one commit's statuses side by side; SQLite has one process."""
        if self.dialect != "postgresql":
            yield True
            return
        async with self.engine.connect() as connection:
            lock = text("SELECT pg_try_advisory_lock(:key)").bindparams(key=OUTBOX_LOCK)
            acquired = bool(await connection.scalar(lock))
            await connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    unlock = text("SELECT pg_advisory_unlock(:key)").bindparams(key=OUTBOX_LOCK)
                    await connection.scalar(unlock)
                    await connection.commit()

    async def claim_outbox(self, now: datetime, limit: int) -> list[s.OutboxMessage]:
        outbox = m.OutboxMessage
        earlier = outbox.__table__.alias("earlier")
        waits_for_earlier = (
            select(earlier.c.id)
            .where(
                earlier.c.key == outbox.key,
                earlier.c.delivered_at.is_(None),
                earlier.c.id < outbox.id,
            )
            .exists()
        )
        query = (
            select(outbox)
            .where(outbox.delivered_at.is_(None), outbox.next_attempt_at <= now, ~waits_for_earlier)
            .order_by(outbox.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).scalars().all()
            return [s.OutboxMessage.model_validate(r) for r in rows]

    async def outbox_delivered(self, message_id: int, now: datetime) -> None:
        await self._outbox_attempt(message_id, delivered_at=now, last_error=None)

    async def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        await self._outbox_attempt(message_id, next_attempt_at=retry_at, last_error=error[:2000])

    async def _outbox_attempt(self, message_id: int, **values: Any) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.id == message_id)
                .values(attempts=m.OutboxMessage.attempts + 1, **values)
            )

    async def outbox_pending(self) -> int:
        query = (
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.delivered_at.is_(None))
        )
        async with self.sessions() as session:
            return int(await session.scalar(query) or 0)


# --- queries ------------------------------------------------------------------------------------


def _run_query() -> Select[m.PipelineRun]:
    # One round trip for the whole tree (the rows repeat the run; a run has tens of steps).
    tree = joinedload(m.PipelineRun.phases).joinedload(m.PhaseExecution.tasks)
    return select(m.PipelineRun).options(tree.joinedload(m.TaskExecution.steps))


def _release_query() -> Select[m.Release]:
    return select(m.Release).options(
        selectinload(m.Release.aliases),
        selectinload(m.Release.artifacts),
        selectinload(m.Release.trigger),
    )


def _deployment_query() -> Select[m.Deployment]:
    return select(m.Deployment).options(selectinload(m.Deployment.release))


def _active_deployment(environment: str, repository: str, project: str) -> Select[m.Deployment]:
    return _deployment_query().where(
        m.Deployment.environment == environment,
        m.Deployment.repository == repository,
        m.Deployment.project == project,
        m.Deployment.status == s.DeploymentStatus.ACTIVE.value,
    )


def _active_approvals(now: datetime) -> Select[m.ReleaseApproval]:
    approval = m.ReleaseApproval
    return (
        select(approval)
        .where(
            approval.status == s.ApprovalStatus.ACTIVE.value,
            approval.expires_at.is_(None) | (approval.expires_at > now),
        )
        .order_by(approval.approved_at.desc())
    )


def _alias_query(repository: str, project: str, alias: str) -> Select[m.ReleaseAlias]:
    return select(m.ReleaseAlias).where(
        m.ReleaseAlias.repository == repository,
        m.ReleaseAlias.project == project,
        m.ReleaseAlias.alias == alias,
    )


async def _paged(
    session: AsyncSession, query: Select[Any], page: s.Page, *order: Any
) -> tuple[int, Sequence[Any]]:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    paged = query.order_by(*order).limit(page.limit).offset(page.offset)
    return int(total or 0), (await session.execute(paged)).scalars().all()


async def _locked(session: AsyncSession, model: type[Any], entity_id: uuid.UUID, what: str) -> Any:
    entity = await session.get(model, entity_id, with_for_update=True)
    if entity is None:
        raise NotFound(f"{what} {entity_id} does not exist", where="id")
    return entity


# --- rules applied in the transaction -----------------------------------------------------------


async def _require_run_open(session: AsyncSession, run_id: uuid.UUID | None) -> None:
    status = await session.scalar(select(m.PipelineRun.status).where(m.PipelineRun.id == run_id))
    if status is not None and RunStatus(status) == RunStatus.CANCELLED:
        raise Conflict(
            f"pipeline run {run_id} was cancelled", where="run_id", details={"run_id": str(run_id)}
        )


async def _check_run_of(session: AsyncSession, run_id: uuid.UUID, repository: str) -> None:
    run = await session.get(m.PipelineRun, run_id)
    if run is None:
        raise NotFound(f"pipeline run {run_id} does not exist", where="pipeline_run_id")
    if run.repository != repository:
        raise InvalidRequest(
            f"pipeline run {run.id} is of repository {run.repository}, not {repository}",
            where="pipeline_run_id",
        )


async def _cancel_children(session: AsyncSession, run_id: uuid.UUID) -> None:
    now = m.utcnow()
    phase_ids = (
        select(m.PhaseExecution.id)
        .where(m.PhaseExecution.pipeline_run_id == run_id)
        .scalar_subquery()
    )
    task_ids = (
        select(m.TaskExecution.id)
        .where(m.TaskExecution.phase_execution_id.in_(phase_ids))
        .scalar_subquery()
    )
    for model, scope in (
        (m.PhaseExecution, m.PhaseExecution.pipeline_run_id == run_id),
        (m.TaskExecution, m.TaskExecution.phase_execution_id.in_(phase_ids)),
        (m.StepExecution, m.StepExecution.task_execution_id.in_(task_ids)),
    ):
        await session.execute(
            update(model)
            .where(scope, model.status.in_(OPEN_STATUSES))
            .values(status=RunStatus.CANCELLED.value, completed_at=now)
            .execution_options(synchronize_session=False)
        )


def _change(session: AsyncSession, actor: str, what: str, entity: Any, status: RunStatus) -> bool:
    """Apply a status change to a phase, task or step (with its audit entry); False if none."""
    change = rules.transition(what, entity.id, entity.status, status, m.utcnow())
    if change.changed:
        changed = {"from": entity.status, "to": status.value}
        _audit(session, actor, f"{what}.status", what, entity.id, changed)
        _apply(entity, status.value, change)
    return change.changed


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


def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    details: dict[str, Any],
) -> None:
    session.add(
        m.AuditEntry(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            details=details,
            at=m.utcnow(),
        )
    )


def _commit_status(session: AsyncSession, run: m.PipelineRun) -> None:
    status = RunStatus(run.status)
    session.add(
        m.OutboxMessage(
            key=rules.commit_status_key(run.repository, run.commit_sha),
            kind=rules.COMMIT_STATUS_KIND,
            payload=rules.commit_status_payload(run.id, run.repository, run.commit_sha, status),
            created_at=m.utcnow(),
            next_attempt_at=m.utcnow(),
            attempts=0,
        )
    )


# --- plan, releases, aliases --------------------------------------------------------------------

PlanRows = list[tuple[m.PhaseExecution, list[tuple[m.TaskExecution, list[m.StepExecution]]]]]


def _plan_rows(run_id: uuid.UUID, plan: RunPlan) -> PlanRows:
    """The rows of a plan, with their ids; names must be unique where the tables say so."""
    _unique([p.name for p in plan.phases], "phases[].name")
    rows: PlanRows = []
    for phase_plan in plan.phases:
        names = [t.project_name for t in phase_plan.tasks]
        _unique(names, f"{phase_plan.name}.tasks[].project_name")
        phase = m.PhaseExecution(
            id=uuid.uuid4(),
            pipeline_run_id=run_id,
            phase_name=phase_plan.name,
            group_number=phase_plan.group_number,
            required=phase_plan.required,
            status=RunStatus.PENDING.value,
        )
        tasks = []
        for task_plan in phase_plan.tasks:
            _unique([st.name for st in task_plan.steps], f"{task_plan.key}.steps[].name")
            task = m.TaskExecution(
                id=uuid.uuid4(),
                phase_execution_id=phase.id,
                key=task_plan.key,
                project_name=task_plan.project_name,
                project_path=task_plan.project_path,
                timeout_seconds=task_plan.timeout.total_seconds() if task_plan.timeout else None,
                status=RunStatus.PENDING.value,
            )
            steps = [
                m.StepExecution(
                    id=uuid.uuid4(),
                    task_execution_id=task.id,
                    position=position,
                    step_name=step.name,
                    action=step.action,
                    target=step.target,
                    timeout_seconds=_whole_seconds(step.timeout),
                    spec=step.spec().model_dump(mode="json"),
                    status=RunStatus.PENDING.value,
                )
                for position, step in enumerate(task_plan.steps)
            ]
            tasks.append((task, steps))
        rows.append((phase, tasks))
    return rows


def _artifact(release_id: uuid.UUID, artifact: s.ArtifactIn) -> m.ReleaseArtifact:
    return m.ReleaseArtifact(
        release_id=release_id,
        artifact_name=artifact.name,
        artifact_type=artifact.type,
        tracking_oci_uri=artifact.tracking_oci_uri,
        tracking_oci_digest=artifact.tracking_oci_digest,
        primary_published_uri=artifact.primary_published_uri,
    )


def _alias(release: m.Release, alias: str, alias_type: s.AliasType) -> m.ReleaseAlias:
    return m.ReleaseAlias(
        release_id=release.id,
        repository=release.repository,
        project=release.project,
        alias=alias,
        alias_type=alias_type.value,
    )


async def _point_alias(
    session: AsyncSession, release: m.Release, alias: str, alias_type: s.AliasType
) -> None:
    """Create the alias on ``release``, or move it there from the release it named before."""
    query = _alias_query(release.repository, release.project, alias).with_for_update()
    row = await session.scalar(query)
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
        by_prefix = base.where(m.Release.commit_sha.startswith(ref.lower())).limit(2)
        matches = (await session.execute(by_prefix)).scalars().all()
        if len(matches) > 1:
            raise InvalidRequest(
                f"commit prefix {ref!r} names more than one release; give more digits",
                where="release",
            )
        found = matches[0] if matches else None
    if found is None:
        alias_of = select(m.ReleaseAlias.release_id).where(
            m.ReleaseAlias.repository == repository,
            m.ReleaseAlias.project == project,
            m.ReleaseAlias.alias == ref,
        )
        found = await session.scalar(base.where(m.Release.id.in_(alias_of.scalar_subquery())))
    if found is None:
        raise NotFound(f"{repository}/{project} has no release {ref!r}", where="release")
    return found


async def _usable_approval(
    session: AsyncSession, data: s.DeploymentCreate, now: datetime
) -> m.ReleaseApproval | None:
    query = _active_approvals(now).where(
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


# --- rows to schemas ----------------------------------------------------------------------------


def _whole_seconds(limit: timedelta | None) -> int | None:
    return max(1, round(limit.total_seconds())) if limit is not None else None


def _step(row: m.StepExecution) -> s.Step:
    # Rows of plans recorded before the spec column have only the columns.
    spec = row.spec or {
        "name": row.step_name,
        "action": row.action,
        "target": row.target,
        "timeout": row.timeout_seconds,
    }
    return s.Step.model_validate({
        **spec,
        "id": str(row.id),
        "status": RunStatus(row.status),
        "exit_code": row.exit_code,
        "logs_s3_key": row.logs_s3_key,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
    })


def _task(row: m.TaskExecution, steps: list[s.Step]) -> s.Task:
    return s.Task(
        id=str(row.id),
        key=row.key,
        project_name=row.project_name,
        project_path=row.project_path,
        timeout=timedelta(seconds=row.timeout_seconds) if row.timeout_seconds is not None else None,
        status=RunStatus(row.status),
        error=row.error,
        started_at=row.started_at,
        completed_at=row.completed_at,
        steps=tuple(steps),
    )


def _phase(row: m.PhaseExecution, tasks: list[s.Task]) -> s.Phase:
    return s.Phase(
        id=str(row.id),
        name=row.phase_name,
        group_number=row.group_number,
        required=row.required,
        status=RunStatus(row.status),
        started_at=row.started_at,
        completed_at=row.completed_at,
        tasks=tuple(tasks),
    )


def _run(row: m.PipelineRun, phases: Sequence[m.PhaseExecution]) -> s.Run:
    summary = s.RunSummary.model_validate(row)
    tree = [_phase(p, [_task(t, [_step(st) for st in t.steps]) for t in p.tasks]) for p in phases]
    artifacts = [ArtifactPlan.model_validate(a) for a in row.plan_artifacts or ()]
    return s.Run(**summary.__dict__, phases=tree, artifacts=artifacts)


def _release(row: m.Release) -> s.Release:
    return s.Release(
        id=row.id,
        repository=row.repository,
        project=row.project,
        commit_sha=row.commit_sha,
        release_number=row.release_number,
        created_at=row.created_at,
        canonical_id=f"{row.repository}/{row.project}/{row.commit_sha}",
        pipeline_run_id=row.pipeline_run_id,
        oci_uri=row.oci_uri,
        oci_digest=row.oci_digest,
        created_by=row.created_by,
        artifacts=[
            s.Artifact(
                name=a.artifact_name,
                type=a.artifact_type,
                tracking_oci_uri=a.tracking_oci_uri,
                tracking_oci_digest=a.tracking_oci_digest,
                primary_published_uri=a.primary_published_uri,
            )
            for a in row.artifacts
        ],
        aliases=[s.Alias(alias=a.alias, alias_type=s.AliasType(a.alias_type)) for a in row.aliases],
        trigger=s.ReleaseTrigger.model_validate(row.trigger) if row.trigger else None,
    )


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
    )


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
