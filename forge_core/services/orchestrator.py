"""The embedded orchestrator: a run's phase groups, on one machine, through dispatched jobs.

Groups run strictly in order; the tasks of a group run in parallel (at most ``max_parallel`` at
once), each as a ``ci`` job through the JobDispatcher port (over NATS: the same path as ``forge
dispatch``). The first failing task of a *required* phase fails the run: the group's other running
tasks are cancelled, its tasks not yet started and every later group are skipped. A failing task of
a phase that is not required is recorded (the task and its phase fail) and the run goes on; the
outcome lists those phases. Setting the ``cancel`` event stops the run like a required failure,
with status ``cancelled``. Every state change goes through the RunRecorder.

A task a worker already started when it is cancelled runs to its end on that worker (jobs have
no cancel message yet); the run does not wait for it.

When every group succeeded (failed phases that are not required aside) and an
:class:`~forge_core.ports.orchestrator.ArtifactStage` is given, each of its artifacts is an
``artifact`` job (at most ``max_parallel`` at once); every artifact runs, and any failed one fails
the run, named with its error (which names the target). The artifact job records its own outcome;
one that never answered is recorded failed here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.jobs import ArtifactJobPayload, CiJobPayload, SourceRef, attempt_job_id
from forge_core.domain.models import Job, JobStatus, RunStatus
from forge_core.domain.run_plan import ArtifactPlan, PhasePlan, RunPlan, TaskPlan, id_of
from forge_core.ports.orchestrator import ArtifactStage, JobDispatcher, RunOutcome
from forge_core.ports.platform import CONFLICT, RunRecorder

log = logging.getLogger("forge.orchestrator")

TIMEOUT_MARGIN = 60.0
"""Seconds added to the sum of a task's step timeouts for checkout, queueing and reporting."""


@dataclass(frozen=True)
class TaskOutcome:
    task: TaskPlan
    status: RunStatus
    error: str | None = None


def parse_plan(plan: dict[str, Any]) -> RunPlan:
    """The recorded plan as the API returned it (statuses and timestamps beside it are ignored)."""
    try:
        parsed = RunPlan.model_validate(plan, extra="ignore")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigurationError(
            f"invalid plan: {first['msg']}", where="plan." + ".".join(str(p) for p in first["loc"])
        ) from None
    missing = parsed.unrecorded()
    if missing is not None:
        raise ConfigurationError("invalid plan: not recorded (the API assigns ids)", where=f"plan.{missing}")
    return parsed


class EmbeddedOrchestrator:
    """An :class:`~forge_core.ports.orchestrator.Orchestrator` driving dispatchers in-process."""

    def __init__(
        self,
        dispatcher: JobDispatcher,
        recorder: RunRecorder,
        *,
        max_parallel: int = 4,
        task_timeout: float = 1800.0,
        env: dict[str, str] | None = None,
    ) -> None:
        if max_parallel < 1:
            raise ConfigurationError("max_parallel must be at least 1", where="max_parallel")
        self.dispatcher, self.recorder = dispatcher, recorder
        self.max_parallel, self.task_timeout = max_parallel, task_timeout
        self.env = dict(env or {})

    async def execute(
        self,
        run_id: str,
        plan: dict[str, Any],
        source: SourceRef,
        *,
        cancel: asyncio.Event | None = None,
        artifacts: ArtifactStage | None = None,
    ) -> RunOutcome:
        groups = parse_plan(plan).groups()
        cancel = cancel or asyncio.Event()
        await self.recorder.set_run_status(run_id, RunStatus.RUNNING.value)
        outcome: RunOutcome | None = None
        tolerated: list[str] = []  # phases that failed without stopping the run (not required)
        for group in groups:
            if outcome is None and cancel.is_set():
                outcome = RunOutcome(RunStatus.CANCELLED, "cancelled")
            if outcome is not None:
                await self._skip(group)
                continue
            outcome = await self._run_group(run_id, group, source, cancel, tolerated)
        if outcome is None and artifacts is not None and artifacts.artifacts:
            outcome = await self._run_artifacts(run_id, artifacts, cancel)
        if outcome is None and artifacts is not None and artifacts.then is not None:
            failed = await artifacts.then()
            outcome = RunOutcome(RunStatus.FAILED, failed) if failed else None
        outcome = replace(outcome or RunOutcome(RunStatus.SUCCESS), failed_phases=tuple(tolerated))
        await self.recorder.set_run_status(run_id, outcome.status.value, error=outcome.error)
        also = f"; failed, not required: {', '.join(tolerated)}" if tolerated else ""
        log.info("run %s: %s%s%s", run_id, outcome.status.value, f" ({outcome.error})" if outcome.error else "", also)
        return outcome

    async def _run_group(
        self, run_id: str, group: list[PhasePlan], source: SourceRef, cancel: asyncio.Event, tolerated: list[str]
    ) -> RunOutcome | None:
        """Run one group; None when the run goes on, else why it stops. Phases that failed but are
        not required are added to ``tolerated``."""
        required = {id_of(task): phase.required for phase in group for task in phase.tasks}
        for phase in group:
            await self.recorder.set_phase_status(id_of(phase), RunStatus.RUNNING.value)
        slots = asyncio.Semaphore(self.max_parallel)
        abort = asyncio.Event()
        pending: set[asyncio.Task[TaskOutcome]] = {
            asyncio.create_task(self._run_task(run_id, task, source, slots, abort))
            for phase in group
            for task in phase.tasks
        }
        cancelled = asyncio.create_task(cancel.wait())
        outcomes: dict[str, TaskOutcome] = {}
        stop: RunOutcome | None = None
        try:
            while pending:
                waiting: set[asyncio.Future[Any]] = {*pending, cancelled}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for finished in [t for t in pending if t.done()]:
                    pending.discard(finished)
                    result = finished.result()
                    outcomes[id_of(result.task)] = result
                    if result.status is RunStatus.FAILED and stop is None and required[id_of(result.task)]:
                        stop = RunOutcome(
                            RunStatus.FAILED, f"task {result.task.key} failed: {result.error}", result.task.key
                        )
                if cancelled.done() and stop is None:
                    stop = RunOutcome(RunStatus.CANCELLED, "cancelled")
                if stop is not None and pending:
                    abort.set()
                    for task in pending:
                        task.cancel()
                    for result in await asyncio.gather(*pending):
                        outcomes[id_of(result.task)] = result
                    pending = set()
        finally:
            cancelled.cancel()
            for task in pending:  # an exception above must not leave tasks dispatching
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for phase in group:
            statuses = {outcomes[id_of(t)].status for t in phase.tasks if id_of(t) in outcomes}
            if RunStatus.FAILED in statuses:
                status = RunStatus.FAILED
                if not phase.required:
                    tolerated.append(phase.name)
            elif statuses <= {RunStatus.SUCCESS}:
                status = RunStatus.SUCCESS
            else:
                status = RunStatus.CANCELLED
            await self.recorder.set_phase_status(id_of(phase), status.value)
        return stop

    async def _run_task(
        self, run_id: str, task: TaskPlan, source: SourceRef, slots: asyncio.Semaphore, abort: asyncio.Event
    ) -> TaskOutcome:
        started = False
        try:
            async with slots:
                if abort.is_set():
                    raise asyncio.CancelledError
                started = True
                payload = CiJobPayload(task=task, source=source, env=self.env)
                job = Job(id=f"ci-{id_of(task)}", type="ci", run_id=run_id, payload=payload.model_dump(mode="json"))
                try:
                    result = await self.dispatcher.dispatch(job, self._timeout(task))
                except Exception as exc:  # no reply in time, or the bus failed: nobody recorded it
                    error = str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
                    await self.recorder.set_task_status(id_of(task), RunStatus.FAILED.value, error=error)
                    return TaskOutcome(task, RunStatus.FAILED, error)
            if result.status is JobStatus.SUCCESS:
                return TaskOutcome(task, RunStatus.SUCCESS)
            return TaskOutcome(task, RunStatus.FAILED, result.error or "failed")
        except asyncio.CancelledError:
            if started:
                try:
                    await self.recorder.set_task_status(id_of(task), RunStatus.CANCELLED.value, error="run stopped")
                except ForgeError as error:
                    if error.code != CONFLICT:
                        raise
                    log.info("task %s finished before it could be cancelled: %s", task.key, error)
                return TaskOutcome(task, RunStatus.CANCELLED, "run stopped")
            await self._skip_task(task)
            return TaskOutcome(task, RunStatus.SKIPPED)

    async def _run_artifacts(self, run_id: str, stage: ArtifactStage, cancel: asyncio.Event) -> RunOutcome | None:
        """Every artifact of the stage as a job; None when all succeeded, else why the run fails."""
        slots = asyncio.Semaphore(self.max_parallel)
        jobs = [asyncio.create_task(self._run_artifact(run_id, a, stage, slots)) for a in stage.artifacts]
        every = asyncio.gather(*jobs)
        cancelled = asyncio.create_task(cancel.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {every, cancelled}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not every.done():
                return RunOutcome(RunStatus.CANCELLED, "cancelled")
        finally:
            cancelled.cancel()
            every.cancel()
            await asyncio.gather(every, return_exceptions=True)
        errors = [error for job in jobs if (error := job.result()) is not None]
        if errors:
            return RunOutcome(RunStatus.FAILED, "; ".join(errors))
        return None

    async def _run_artifact(
        self, run_id: str, artifact: ArtifactPlan, stage: ArtifactStage, slots: asyncio.Semaphore
    ) -> str | None:
        """One artifact job; None when it succeeded, else the error naming the artifact."""
        name = f"{artifact.project.name}/{artifact.spec.name}"
        payload = ArtifactJobPayload(
            artifact=artifact, source=stage.source, publish=stage.publish, env=self.env,
            version=stage.versions.get(artifact.project.name),
        )
        job = Job(id=attempt_job_id(f"artifact-{run_id}-{payload.artifact_id}", stage.attempt), type="artifact",
                  run_id=run_id,
                  payload=payload.model_dump(mode="json"))
        async with slots:
            try:
                result = await self.dispatcher.dispatch(job, self.task_timeout)
            except Exception as exc:  # no reply in time, or the bus failed: nobody recorded it
                error = str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
                previous = await self.recorder.artifact_record(run_id, artifact.project.name, artifact.spec.name)
                kept = previous["targets"] if previous else []  # what is out there stays recorded
                record = {"type": artifact.spec.type, "status": "failed", "error": error, "targets": kept}
                await self.recorder.record_artifact(run_id, artifact.project.name, artifact.spec.name, record)
                return f"artifact {name} failed: {error}"
        if result.status is JobStatus.SUCCESS:
            return None
        return f"artifact {name} failed: {result.error or 'failed'}"

    def _timeout(self, task: TaskPlan) -> float:
        """How long the task's job may take: every attempt of every step at its limit, the delays
        between attempts, and a margin; the default when a step has no limit."""
        total = 0.0
        for step in task.steps:
            limit = task.step_limit(step)
            if limit is None:
                return self.task_timeout
            retries = step.retries
            total += limit.total_seconds() * (1 + retries.attempts) + retries.delay.total_seconds() * retries.attempts
        return total + TIMEOUT_MARGIN if task.steps else self.task_timeout

    async def _skip(self, group: list[PhasePlan]) -> None:
        for phase in group:
            await self.recorder.set_phase_status(id_of(phase), RunStatus.SKIPPED.value)
            for task in phase.tasks:
                await self._skip_task(task)

    async def _skip_task(self, task: TaskPlan) -> None:
        await self.recorder.set_task_status(id_of(task), RunStatus.SKIPPED.value)
        for step in task.steps:
            await self.recorder.set_step_status(id_of(step), RunStatus.SKIPPED.value)


__all__ = ["EmbeddedOrchestrator", "RunOutcome", "TaskOutcome"]
