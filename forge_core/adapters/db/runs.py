"""Pipeline runs and their plan: phases, tasks and steps (the run aggregate)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase, adopted_name, audit, locked, paged, stored, unique
from forge_core.adapters.db.outbox import commit_status
from forge_core.domain.models import RunStatus
from forge_core.domain.run_plan import ArtifactPlan, RunPlan
from forge_core.services import rules
from forge_core.services import schemas as s
from forge_core.services.errors import Conflict, NotFound

OPEN_STATUSES = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class SqlRuns(SqlDatabase):
    """Implements :class:`forge_core.services.store.RunStore`; each method is one transaction."""

    async def run_counts(self) -> dict[str, int]:
        query = select(m.PipelineRun.status, func.count()).group_by(m.PipelineRun.status)
        async with self.sessions() as session:
            return {row[0]: row[1] for row in (await session.execute(query)).all()}

    async def create_run(self, data: s.RunCreate, actor: str) -> s.Run:
        try:
            async with self.transaction() as session:
                run = m.PipelineRun(
                    **data.model_dump(exclude={"trigger_type", "repository"}),
                    repository=await adopted_name(session, data.repository),  # the case first seen
                    id=uuid.uuid4(),
                    trigger_type=data.trigger_type.value,
                    status=RunStatus.PENDING.value,
                    created_at=m.utcnow(),
                )
                session.add(run)  # inserted with the outbox row and the audit entry at commit
                commit_status(session, run)
                audit(session, actor, "run.created", "run", run.id, {"commit_sha": run.commit_sha})
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
        runs = m.PipelineRun.__table__
        async with self.sessions() as session:
            return await _run_tree(
                session, (runs.c.repository == stored(repository)) & (runs.c.commit_sha == commit_sha))

    async def get_run(self, run_id: uuid.UUID, attempt: int | None = None) -> s.Run:
        """The run on its current attempt, or as an earlier ``attempt`` ended (its phases, tasks
        and steps then)."""
        async with self.sessions() as session:
            run = await _run_tree(session, m.PipelineRun.__table__.c.id == run_id, attempt)
        if run is None:
            raise NotFound(f"pipeline run {run_id} does not exist", where="run_id")
        return run

    async def rerun(self, run_id: uuid.UUID, only_failed: bool, actor: str) -> s.Run:
        """The finished run's next attempt, pending: the attempt that ended is kept (its phases,
        tasks and steps, and a summary row); the driver records the plan again, and with
        ``only_failed`` the tasks that succeeded before are carried over as they ended."""
        async with self.transaction() as session:
            run = await locked(session, m.PipelineRun, run_id, "pipeline run")
            if RunStatus(run.status) not in s.FINAL_STATUSES:
                raise Conflict(
                    f"pipeline run {run_id} is {run.status} (attempt {run.attempt}): one attempt at a time "
                    f"per commit; cancel it or wait for it to finish before re-running it",
                    where="run_id", details={"run_id": str(run_id), "status": run.status, "attempt": run.attempt},
                )
            session.add(m.RunAttempt(
                id=uuid.uuid4(), pipeline_run_id=run.id, number=run.attempt, status=run.status, error=run.error,
                only_failed=run.rerun_only_failed, driver=run.driver, started_at=run.started_at,
                completed_at=run.completed_at,
            ))
            ended = {"attempt": run.attempt, "status": run.status}
            run.attempt += 1
            run.rerun_only_failed = only_failed
            run.status, run.error = RunStatus.PENDING.value, None
            run.started_at = run.completed_at = None
            run.claimed_by = run.claimed_at = None  # a run starter takes it again
            run.driver = run.lease_expires_at = None
            _counted(run)  # a live view sees the new attempt begin
            commit_status(session, run)
            audit(session, actor, "run.rerun", "run", run_id, {**ended, "only_failed": only_failed})
        return await self.get_run(run_id)

    async def record_artifact(
        self, run_id: uuid.UUID, project: str, artifact: str, update: s.ArtifactRecordUpdate, actor: str
    ) -> s.ArtifactRecord:
        for attempt in (1, 2):  # two first reports at once: the loser of the insert updates
            try:
                async with self.transaction() as session:
                    return await _put_record(session, run_id, project, artifact, update, actor)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def get_artifact_record(self, run_id: uuid.UUID, project: str, artifact: str) -> s.ArtifactRecord:
        async with self.sessions() as session:
            run = await session.get(m.PipelineRun, run_id)
            if run is None:
                raise NotFound(f"pipeline run {run_id} does not exist", where="run_id")
            row = await session.scalar(_record_query(run_id, project, artifact))
            if row is None:
                raise NotFound(
                    f"run {run_id} has no record of artifact {artifact!r} of project {project!r}",
                    where="artifact",
                )
            return _record(row)

    async def run_progress(self, run_id: uuid.UUID) -> s.RunProgress:
        # Only the columns that change, row by row: no run is built.
        run = select(m.PipelineRun.status, m.PipelineRun.error, m.PipelineRun.started_at,
                     m.PipelineRun.completed_at).where(m.PipelineRun.id == run_id)
        phase = m.PhaseExecution
        current = select(m.PipelineRun.attempt).where(m.PipelineRun.id == run_id).scalar_subquery()
        phases = select(phase.id, phase.status, phase.started_at, phase.completed_at).where(
            phase.pipeline_run_id == run_id, phase.attempt == current)
        task = m.TaskExecution
        tasks = (
            select(task.id, task.status, task.error, task.started_at, task.completed_at)
            .join(phase, task.phase_execution_id == phase.id)
            .where(phase.pipeline_run_id == run_id, phase.attempt == current)
        )
        steps = _step_progress(run_id).where(phase.attempt == current)
        async with self.sessions() as session:
            head = (await session.execute(run)).mappings().one_or_none()
            if head is None:
                raise NotFound(f"pipeline run {run_id} does not exist", where="run_id")
            found = [(await session.execute(query)).mappings().all() for query in (phases, tasks, steps)]
        by_id = [{str(row["id"]): s.Progress.model_validate(dict(row)) for row in rows} for rows in found]
        return s.RunProgress(run=s.Progress.model_validate(dict(head)), phases=by_id[0], tasks=by_id[1],
                             steps=by_id[2])

    async def run_step(self, run_id: uuid.UUID, step_id: uuid.UUID) -> s.Progress | None:
        """A step of the run, of whichever attempt (an earlier attempt's logs stay readable); None
        when the run has no such step."""
        query = _step_progress(run_id).where(m.StepExecution.id == step_id)
        async with self.sessions() as session:
            row = (await session.execute(query)).mappings().one_or_none()
        return None if row is None else s.Progress.model_validate(dict(row))

    async def run_changes(self, run_id: uuid.UUID, since: int) -> s.RunChanges:
        # The cursor is read first: a change committed after it is sent now and again next time
        # (harmless), one stamped at or below it has committed (its stamp came under the run's lock).
        phase, task, step = m.PhaseExecution, m.TaskExecution, m.StepExecution
        run = select(m.PipelineRun.progress_seq, m.PipelineRun.status, m.PipelineRun.error,
                     m.PipelineRun.started_at, m.PipelineRun.completed_at).where(m.PipelineRun.id == run_id)
        phases = select(phase.id, phase.status, phase.started_at, phase.completed_at).where(
            phase.pipeline_run_id == run_id, phase.progress_seq > since)
        tasks = (
            select(task.id, task.status, task.error, task.started_at, task.completed_at)
            .join(phase, task.phase_execution_id == phase.id)
            .where(phase.pipeline_run_id == run_id, task.progress_seq > since)
        )
        steps = (
            select(step.id, step.status, step.exit_code, step.logs_s3_key, step.started_at, step.completed_at)
            .join(task, step.task_execution_id == task.id).join(phase, task.phase_execution_id == phase.id)
            .where(phase.pipeline_run_id == run_id, step.progress_seq > since)
        )
        records = select(m.ArtifactRecord).where(
            m.ArtifactRecord.pipeline_run_id == run_id, m.ArtifactRecord.progress_seq > since
        ).order_by(m.ArtifactRecord.project, m.ArtifactRecord.artifact)
        async with self.sessions() as session:
            head = (await session.execute(run)).mappings().one_or_none()
            if head is None:
                raise NotFound(f"pipeline run {run_id} does not exist", where="run_id")
            found = [(await session.execute(query)).mappings().all() for query in (phases, tasks, steps)]
            changed_records = [_record(row) for row in (await session.scalars(records)).all()]
        by_id = [{str(row["id"]): s.Progress.model_validate(dict(row)) for row in rows} for rows in found]
        progress = {k: v for k, v in head.items() if k != "progress_seq"}
        return s.RunChanges(cursor=int(head["progress_seq"]), run=s.Progress.model_validate(progress),
                            phases=by_id[0], tasks=by_id[1], steps=by_id[2], artifact_records=changed_records)

    async def list_runs(
        self, page: s.Page, *, repository: str | None, branch: str | None, status: RunStatus | None
    ) -> s.RunList:
        query = select(m.PipelineRun)
        if repository is not None:
            query = query.where(m.PipelineRun.repository == stored(repository))
        if branch is not None:
            query = query.where(m.PipelineRun.branch == branch)
        if status is not None:
            query = query.where(m.PipelineRun.status == status.value)
        order = (m.PipelineRun.created_at.desc(), m.PipelineRun.id)
        async with self.sessions() as session:
            total, rows = await paged(session, query, page, *order)
            return s.RunList(
                runs=[s.RunSummary.model_validate(r) for r in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )

    async def record_plan(self, run_id: uuid.UUID, plan: RunPlan, actor: str) -> s.RecordedPlan:
        """The plan of the run's current attempt. A re-run of only the failed tasks carries the
        tasks that succeeded in the attempt before over (same key: status, times and steps as
        they ended), for the driver to leave out."""
        try:
            async with self.transaction() as session:
                run = await locked(session, m.PipelineRun, run_id, "pipeline run")
                if RunStatus(run.status) in s.FINAL_STATUSES:
                    raise Conflict(f"pipeline run {run_id} is already {run.status}", where="run_id")
                planned = await session.scalar(
                    select(func.count())
                    .select_from(m.PhaseExecution)
                    .where(m.PhaseExecution.pipeline_run_id == run_id, m.PhaseExecution.attempt == run.attempt)
                )
                if planned:
                    raise Conflict(f"pipeline run {run_id} already has a plan", where="run_id")
                phases = _plan_rows(run_id, plan, run.attempt)
                if run.attempt > 1 and run.rerun_only_failed:
                    await _carry_over_successes(session, run_id, run.attempt - 1, phases)
                seq = _counted(run)
                for phase, tasks in phases:
                    phase.progress_seq = seq
                    for task, steps in tasks:
                        task.progress_seq = seq
                        for st in steps:
                            st.progress_seq = seq
                run.plan_artifacts = [a.model_dump(mode="json") for a in plan.artifacts]
                # What promotions of the run's releases decide by, and (the newest planned run's) what
                # environments the repository has; None: its repo.cue has no block (the defaults).
                environments = plan.environments.model_dump(mode="json") if plan.environments else None
                run.discovery_output = {"environments": environments}
                # Parents first: the rows reference each other by foreign key.
                session.add_all([phase for phase, _ in phases])
                await session.flush()
                session.add_all([task for _, tasks in phases for task, _ in tasks])
                await session.flush()
                session.add_all([st for _, tasks in phases for _, steps in tasks for st in steps])
                audit(session, actor, "run.planned", "run", run_id, {"phases": len(phases)})
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
            run = await locked(session, m.PipelineRun, run_id, "pipeline run")
            before = RunStatus(run.status)
            change = rules.transition("run", run_id, run.status, update.status, m.utcnow())
            if change.changed:
                _apply(run, update.status.value, change)
                run.error = update.error if update.error is not None else run.error
                seq = _counted(run)
                if update.status == RunStatus.CANCELLED:
                    await _cancel_children(session, run_id, seq)
                commit_status(session, run)
                changed = {"from": before.value, "to": run.status}
                audit(session, actor, "run.status", "run", run_id, changed)
            return before, s.RunSummary.model_validate(run)

    async def renew_lease(self, run_id: uuid.UUID, renewal: s.LeaseRenewal, actor: str) -> s.RunSummary:
        """The run's lease, held by ``renewal.driver`` ``ttl_seconds`` from now. Refused (409) for a
        finished run (its driver should stop) and for a lease another driver holds."""
        now = m.utcnow()
        async with self.transaction() as session:
            run = await locked(session, m.PipelineRun, run_id, "pipeline run")
            if run.status not in OPEN_STATUSES:
                raise Conflict(
                    f"pipeline run {run_id} is {run.status}: its lease is not renewed"
                    + (f" ({run.error})" if run.error else ""),
                    where="run_id", details={"run_id": str(run_id), "status": run.status},
                )
            held = run.lease_expires_at is not None and run.lease_expires_at > now
            if held and run.driver not in (None, renewal.driver):
                raise Conflict(
                    f"pipeline run {run_id} is driven by {run.driver} (lease until "
                    f"{run.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC)",
                    where="driver", details={"run_id": str(run_id), "driver": run.driver},
                )
            if run.driver != renewal.driver:
                audit(session, actor, "run.driver", "run", run_id, {"from": run.driver, "to": renewal.driver})
            run.driver = renewal.driver
            run.lease_expires_at = now + timedelta(seconds=renewal.ttl_seconds)
            return s.RunSummary.model_validate(run)

    async def lapsed_runs(self, limit: int = 100) -> list[uuid.UUID]:
        """Open runs whose lease ran out (their driver stopped renewing it)."""
        query = (
            select(m.PipelineRun.id)
            .where(m.PipelineRun.status.in_(OPEN_STATUSES), m.PipelineRun.lease_expires_at < m.utcnow())
            .order_by(m.PipelineRun.lease_expires_at)
            .limit(limit)
        )
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def close_lapsed_run(self, run_id: uuid.UUID, actor: str) -> s.RunSummary | None:
        """Close the run failed with "its driver stopped", its open phases, tasks and steps
        cancelled; None when it is no longer open with a lapsed lease (renewed, or closed meanwhile)."""
        now = m.utcnow()
        async with self.transaction() as session:
            run = await locked(session, m.PipelineRun, run_id, "pipeline run")
            expired = run.lease_expires_at
            if run.status not in OPEN_STATUSES or expired is None or expired >= now:
                return None
            before = run.status
            change = rules.transition("run", run_id, run.status, RunStatus.FAILED, now)
            _apply(run, RunStatus.FAILED.value, change)
            run.error = (f"its driver stopped: {run.driver} last renewed the run's lease, which lapsed at "
                         f"{expired:%Y-%m-%d %H:%M:%S} UTC")
            await _cancel_children(session, run_id, _counted(run))
            commit_status(session, run)
            audit(session, actor, "run.status", "run", run_id,
                  {"from": before, "to": run.status, "reason": "lease lapsed"})
            return s.RunSummary.model_validate(run)

    async def set_phase_status(
        self, phase_id: uuid.UUID, update: s.PhaseStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            run_id = await session.scalar(
                select(m.PhaseExecution.pipeline_run_id).where(m.PhaseExecution.id == phase_id)
            )
            seq = await _count_change(session, run_id)  # the run's row first, always: no deadlock
            phase = await locked(session, m.PhaseExecution, phase_id, "phase")
            await _require_run_open(session, phase.pipeline_run_id)
            if _change(session, actor, "phase", phase, update.status):
                phase.progress_seq = seq

    async def set_task_status(
        self, task_id: uuid.UUID, update: s.TaskStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            await _set_task_status(session, task_id, update, actor)

    async def set_step_status(
        self, step_id: uuid.UUID, update: s.StepStatusUpdate, actor: str
    ) -> None:
        async with self.transaction() as session:
            await _set_step_status(session, step_id, update, actor)

    async def set_statuses(self, changes: Sequence[s.EntityStatusUpdate], actor: str) -> None:
        async with self.transaction() as session:
            for entity_id, update in changes:
                if isinstance(update, s.StepStatusUpdate):
                    await _set_step_status(session, entity_id, update, actor)
                else:
                    await _set_task_status(session, entity_id, update, actor)


# --- queries and rules applied in the transaction ----------------------------------------------


async def _run_tree(session: AsyncSession, where: Any, attempt: int | None = None) -> s.Run | None:
    """The run matching ``where`` with its phases, tasks, steps and artifact records, on its
    current attempt or as an earlier ``attempt`` ended, read as plain rows (no ORM objects: reading
    a run is what progress displays and the console poll); the phases, tasks and steps in one
    query (a round trip costs more than the repeated parent columns of a run's few dozen steps)."""
    runs = m.PipelineRun.__table__
    head = (await session.execute(select(runs).where(where))).one_or_none()
    if head is None:
        return None
    attempts = await _attempts(session, head.id, head.attempt)
    shown = head.attempt if attempt is None else attempt
    earlier = [a for a in attempts if a.number == shown]
    if shown != head.attempt and not earlier:
        raise NotFound(f"pipeline run {head.id} has no attempt {shown} (it is on attempt {head.attempt})",
                       where="attempt")
    tree = await _phase_tree(session, head.id, shown)
    summary = s.RunSummary.model_validate(head)
    artifacts = [ArtifactPlan.model_validate(a) for a in head.plan_artifacts or ()]
    records = await _records(session, head.id)
    run = s.Run(**summary.__dict__, phases=tree, artifacts=artifacts, artifact_records=records, attempts=attempts)
    if earlier:
        was = earlier[0]
        run = run.model_copy(update={"attempt": shown, "status": was.status, "error": was.error,
                                     "started_at": was.started_at, "completed_at": was.completed_at,
                                     "driver": was.driver})
    return run


def _columns(table: Any) -> tuple[str, ...]:
    return tuple(column.name for column in table.c)


async def _phase_tree(session: AsyncSession, run_id: uuid.UUID, attempt: int) -> list[s.Phase]:
    """The attempt's phases with their tasks and steps, in plan order, from one joined query
    (each row: a phase's columns, then its task's, then the step's; each table's slice is read
    by its own column names, as ``_phase``, ``_task`` and ``_step`` read them)."""
    phases, tasks, steps = m.PhaseExecution.__table__, m.TaskExecution.__table__, m.StepExecution.__table__
    query = (
        select(*phases.c, *tasks.c, *steps.c)
        .select_from(phases)
        .outerjoin(tasks, tasks.c.phase_execution_id == phases.c.id)
        .outerjoin(steps, steps.c.task_execution_id == tasks.c.id)
        .where((phases.c.pipeline_run_id == run_id) & (phases.c.attempt == attempt))
        .order_by(phases.c.group_number, phases.c.phase_name, phases.c.id,
                  tasks.c.project_name, tasks.c.id, steps.c.position)
    )
    phase_names, task_names, step_names = _columns(phases), _columns(tasks), _columns(steps)
    task_at, step_at = len(phase_names), len(phase_names) + len(task_names)
    phase_id = phase_names.index("id")
    task_id, step_id = task_at + task_names.index("id"), step_at + step_names.index("id")
    phase_rows: dict[Any, SimpleNamespace] = {}
    task_rows: dict[Any, dict[Any, SimpleNamespace]] = {}
    steps_of: dict[Any, list[s.Step]] = {}
    for row in (await session.execute(query)).tuples():
        phase, task = row[phase_id], row[task_id]
        if phase not in phase_rows:
            phase_rows[phase] = SimpleNamespace(**dict(zip(phase_names, row[:task_at], strict=True)))
            task_rows[phase] = {}
        if task is not None and task not in task_rows[phase]:
            task_rows[phase][task] = SimpleNamespace(**dict(zip(task_names, row[task_at:step_at], strict=True)))
            steps_of[task] = []
        if row[step_id] is not None:
            steps_of[task].append(_step(SimpleNamespace(**dict(zip(step_names, row[step_at:], strict=True)))))
    return [
        _phase(row, [_task(task, steps_of[key]) for key, task in task_rows[phase].items()])
        for phase, row in phase_rows.items()
    ]


async def _set_task_status(
    session: AsyncSession, task_id: uuid.UUID, update: s.TaskStatusUpdate, actor: str
) -> None:
    run_id = await session.scalar(
        select(m.PhaseExecution.pipeline_run_id)
        .join(m.TaskExecution, m.TaskExecution.phase_execution_id == m.PhaseExecution.id)
        .where(m.TaskExecution.id == task_id)
    )
    seq = await _count_change(session, run_id)  # the run's row first, always: no deadlock
    task = await locked(session, m.TaskExecution, task_id, "task")
    await _require_run_open(session, run_id)
    if _change(session, actor, "task", task, update.status):
        task.progress_seq = seq
        if update.error is not None:
            task.error = update.error


async def _set_step_status(
    session: AsyncSession, step_id: uuid.UUID, update: s.StepStatusUpdate, actor: str
) -> None:
    run_id = await session.scalar(
        select(m.PhaseExecution.pipeline_run_id)
        .join(m.TaskExecution, m.TaskExecution.phase_execution_id == m.PhaseExecution.id)
        .join(m.StepExecution, m.StepExecution.task_execution_id == m.TaskExecution.id)
        .where(m.StepExecution.id == step_id)
    )
    seq = await _count_change(session, run_id)  # the run's row first, always: no deadlock
    step = await locked(session, m.StepExecution, step_id, "step")
    await _require_run_open(session, run_id)
    _change(session, actor, "step", step, update.status)
    if update.exit_code is not None:
        step.exit_code = update.exit_code
    if update.logs_s3_key is not None:
        step.logs_s3_key = update.logs_s3_key
    step.progress_seq = seq


def _step_progress(
    run_id: uuid.UUID,
) -> Select[uuid.UUID, str, int | None, str | None, datetime | None, datetime | None]:
    """The changing columns of the run's steps, of every attempt (narrow it with ``where``)."""
    step, task, phase = m.StepExecution, m.TaskExecution, m.PhaseExecution
    return (
        select(step.id, step.status, step.exit_code, step.logs_s3_key, step.started_at, step.completed_at)
        .join(task, step.task_execution_id == task.id).join(phase, task.phase_execution_id == phase.id)
        .where(phase.pipeline_run_id == run_id)
    )


def _phases_query(run_id: uuid.UUID, attempt: int) -> Select[m.PhaseExecution]:
    return (
        select(m.PhaseExecution)
        .where(m.PhaseExecution.pipeline_run_id == run_id, m.PhaseExecution.attempt == attempt)
        .options(joinedload(m.PhaseExecution.tasks).joinedload(m.TaskExecution.steps))
        .order_by(m.PhaseExecution.group_number, m.PhaseExecution.phase_name)
    )


async def _attempts(session: AsyncSession, run_id: uuid.UUID, current: int) -> list[s.Attempt]:
    """The run's earlier attempts, oldest first (none on its first)."""
    if current == 1:
        return []
    query = select(m.RunAttempt).where(m.RunAttempt.pipeline_run_id == run_id).order_by(m.RunAttempt.number)
    return [s.Attempt.model_validate(row) for row in (await session.scalars(query)).all()]


async def _require_run_open(session: AsyncSession, run_id: uuid.UUID | None) -> None:
    status = await session.scalar(select(m.PipelineRun.status).where(m.PipelineRun.id == run_id))
    if status is not None and RunStatus(status) == RunStatus.CANCELLED:
        raise Conflict(
            f"pipeline run {run_id} was cancelled", where="run_id", details={"run_id": str(run_id)}
        )


def _counted(run: m.PipelineRun) -> int:
    """Count a change of the locked ``run``; the value stamps the rows the change touches."""
    run.progress_seq = (run.progress_seq or 0) + 1
    return run.progress_seq


async def _count_change(session: AsyncSession, run_id: uuid.UUID | None) -> int:
    """Count a change of the run (locking its row until commit, so stamps follow commit order);
    0 for a run that does not exist (the caller's lookup then says so)."""
    if run_id is None:
        return 0
    await session.execute(
        update(m.PipelineRun).where(m.PipelineRun.id == run_id)
        .values(progress_seq=m.PipelineRun.progress_seq + 1).execution_options(synchronize_session=False)
    )
    return int(await session.scalar(select(m.PipelineRun.progress_seq).where(m.PipelineRun.id == run_id)) or 0)


async def _cancel_children(session: AsyncSession, run_id: uuid.UUID, seq: int) -> None:
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
            .values(status=RunStatus.CANCELLED.value, completed_at=now, progress_seq=seq)
            .execution_options(synchronize_session=False)
        )


def _change(session: AsyncSession, actor: str, what: str, entity: Any, status: RunStatus) -> bool:
    """Apply a status change to a phase, task or step (with its audit entry); False if none."""
    change = rules.transition(what, entity.id, entity.status, status, m.utcnow())
    if change.changed:
        changed = {"from": entity.status, "to": status.value}
        audit(session, actor, f"{what}.status", what, entity.id, changed)
        _apply(entity, status.value, change)
    return change.changed


def _apply(entity: Any, status: str, change: rules.Transition) -> None:
    entity.status = status
    if change.started_at is not None and entity.started_at is None:
        entity.started_at = change.started_at
    if change.completed_at is not None:
        entity.completed_at = change.completed_at


# --- plan -------------------------------------------------------------------------------------

PlanRows = list[tuple[m.PhaseExecution, list[tuple[m.TaskExecution, list[m.StepExecution]]]]]


async def _carry_over_successes(session: AsyncSession, run_id: uuid.UUID, before: int, rows: PlanRows) -> None:
    """Tasks of ``rows`` that succeeded in attempt ``before`` (by key) take its outcome over."""
    done = (await session.execute(_phases_query(run_id, before))).unique().scalars().all()
    succeeded = {t.key: t for p in done for t in p.tasks if t.status == RunStatus.SUCCESS.value}
    for _, tasks in rows:
        for task, steps in tasks:
            earlier = succeeded.get(task.key)
            if earlier is None:
                continue
            task.status, task.started_at, task.completed_at = earlier.status, earlier.started_at, earlier.completed_at
            ended = {st.step_name: st for st in earlier.steps}
            for step in steps:
                was = ended.get(step.step_name)
                if was is not None:
                    step.status, step.exit_code, step.logs_s3_key = was.status, was.exit_code, was.logs_s3_key
                    step.started_at, step.completed_at = was.started_at, was.completed_at
                else:  # a step the earlier attempt did not have: nothing ran it
                    step.status = RunStatus.SKIPPED.value


def _plan_rows(run_id: uuid.UUID, plan: RunPlan, attempt: int = 1) -> PlanRows:
    """The rows of a plan, with their ids; names must be unique where the tables say so."""
    unique([p.name for p in plan.phases], "phases[].name")
    rows: PlanRows = []
    for phase_plan in plan.phases:
        names = [t.project_name for t in phase_plan.tasks]
        unique(names, f"{phase_plan.name}.tasks[].project_name")
        phase = m.PhaseExecution(
            id=uuid.uuid4(),
            pipeline_run_id=run_id,
            attempt=attempt,
            phase_name=phase_plan.name,
            group_number=phase_plan.group_number,
            required=phase_plan.required,
            status=RunStatus.PENDING.value,
        )
        tasks = []
        for task_plan in phase_plan.tasks:
            unique([st.name for st in task_plan.steps], f"{task_plan.key}.steps[].name")
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


# --- rows to schemas --------------------------------------------------------------------------


def _whole_seconds(limit: timedelta | None) -> int | None:
    return max(1, round(limit.total_seconds())) if limit is not None else None


def _step(row: Any) -> s.Step:  # a StepExecution, or its table's row (read by attribute alike)
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


def _task(row: Any, steps: list[s.Step]) -> s.Task:
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


def _phase(row: Any, tasks: list[s.Task]) -> s.Phase:
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


def _run(
    row: m.PipelineRun, phases: Sequence[m.PhaseExecution], records: Sequence[s.ArtifactRecord] = (),
    attempts: Sequence[s.Attempt] = (),
) -> s.Run:
    summary = s.RunSummary.model_validate(row)
    tree = [_phase(p, [_task(t, [_step(st) for st in t.steps]) for t in p.tasks]) for p in phases]
    artifacts = [ArtifactPlan.model_validate(a) for a in row.plan_artifacts or ()]
    return s.Run(**summary.__dict__, phases=tree, artifacts=artifacts, artifact_records=list(records),
                 attempts=list(attempts))


# --- artifact records ---------------------------------------------------------------------------


def _record_query(run_id: uuid.UUID, project: str, artifact: str) -> Select[m.ArtifactRecord]:
    return select(m.ArtifactRecord).where(
        m.ArtifactRecord.pipeline_run_id == run_id,
        m.ArtifactRecord.project == project,
        m.ArtifactRecord.artifact == artifact,
    )


async def _records(session: AsyncSession, run_id: uuid.UUID) -> list[s.ArtifactRecord]:
    query = (
        select(m.ArtifactRecord)
        .where(m.ArtifactRecord.pipeline_run_id == run_id)
        .order_by(m.ArtifactRecord.project, m.ArtifactRecord.artifact)
    )
    return [_record(row) for row in (await session.scalars(query)).all()]


def _record(row: m.ArtifactRecord) -> s.ArtifactRecord:
    return s.ArtifactRecord(
        project=row.project, artifact=row.artifact, type=row.type, status=s.ArtifactStatus(row.status),
        error=row.error, digest=row.digest, tracking_oci_uri=row.tracking_oci_uri,
        tracking_oci_digest=row.tracking_oci_digest, primary_published_uri=row.primary_published_uri,
        targets=[s.ArtifactTarget.model_validate(t) for t in row.targets], updated_at=row.updated_at,
    )


async def _put_record(
    session: AsyncSession, run_id: uuid.UUID, project: str, artifact: str, update: s.ArtifactRecordUpdate,
    actor: str,
) -> s.ArtifactRecord:
    run = await locked(session, m.PipelineRun, run_id, "pipeline run")
    if RunStatus(run.status) is RunStatus.CANCELLED:
        raise Conflict(f"pipeline run {run_id} was cancelled", where="run_id", details={"run_id": str(run_id)})
    planned = {(a["project"]["name"], a["spec"]["name"]) for a in run.plan_artifacts or ()}
    if (project, artifact) not in planned:
        raise NotFound(
            f"run {run_id} has no planned artifact {artifact!r} of project {project!r}", where="artifact"
        )
    row = await session.scalar(_record_query(run_id, project, artifact).with_for_update())
    if row is None:
        row = m.ArtifactRecord(pipeline_run_id=run_id, project=project, artifact=artifact)
        session.add(row)
    values = update.model_dump(mode="json", exclude={"status"})
    for name, value in values.items():
        setattr(row, name, value)
    row.status = update.status.value
    row.updated_at = m.utcnow()
    row.progress_seq = _counted(run)
    await session.flush()
    audit(
        session, actor, "artifact.recorded", "run", run_id,
        {"project": project, "artifact": artifact, "status": update.status.value},
    )
    return _record(row)


