"""The ``ci`` job handler: one task of a run's plan, its steps run in a checkout of the commit.

For each step, in order, the step runner named by its ``action`` runs it (``exec``, ``earthly``,
…: any StepRunner plugin) in the project's folder; its output is streamed to
``logs/<run>/<task>/<step>.log`` with secrets masked, and every status change goes through the
RunRecorder. The runner gets the step's spec exactly as planned (settings, secrets references,
retries, …) and its limit: the step's timeout, else the task's. A failed step runs again as its
``retries`` say (more attempts, a delay, output filters), each attempt logged. The first step that
does not succeed fails the task; the steps after it are skipped.

A job the worker withdraws (it stops; ``ctx.stop`` alone) records nothing final: its running step
stays ``running`` and the redelivery runs it again. A cancelled job (``ctx.cancel`` too: its run was
cancelled) records the stopped step, the steps after it and the task ``cancelled``.

It uses the worker's ``JobContext.recorder`` (a blocking RunRecorder) and ``storage`` (an
ObjectStore). Each step gets the operator's ``step_secrets`` and its own ``secrets`` references
resolved through ``JobContext.secrets`` (name → value, masked in its log); a reference that cannot
be resolved fails the step with an error naming it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from pydantic import ValidationError

from forge_core.builtin.workspace import needed, project_checkout
from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.jobs import CiJobPayload
from forge_core.domain.models import (
    Job,
    JobResult,
    JobStatus,
    ProjectRef,
    RunStatus,
    StepOutcome,
    StepSpec,
    StepStatus,
)
from forge_core.domain.run_plan import StepPlan, TaskPlan, id_of
from forge_core.domain.secrets import ResolvedSecrets, mask_secrets
from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import JobHandlerRegistrar
from forge_core.ports.contexts import ExecutionContext, JobContext
from forge_core.ports.platform import CONFLICT, StatusChange
from forge_core.ports.protocols import StepRunner
from forge_core.ports.storage import ObjectStore, log_key


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add("ci", "forge_core.builtin.ci:CiHandler", description="Run a task's steps in a checkout")


def _own_secrets(step: StepPlan, task: TaskPlan, ctx: JobContext) -> ResolvedSecrets:
    """The values of the step's own secret references (the operator's step secrets aside)."""
    if not step.secrets:
        return ResolvedSecrets()
    if ctx.secrets is None:
        raise ConfigurationError(
            f"step {step.name!r} has secrets but the worker gave no secret resolver", where="JobContext.secrets"
        )
    return ctx.secrets.resolve(step.secrets, owner=f"step {step.name!r} of task {task.key!r}")


def _status(outcome: StepOutcome) -> str:
    """Step outcome → the API's status word (a timeout is a failure; the log says why)."""
    if outcome.status is StepStatus.CANCELLED:
        return RunStatus.CANCELLED.value
    return RunStatus.SUCCESS.value if outcome.status is StepStatus.SUCCESS else RunStatus.FAILED.value


class Withdrawn(Exception):
    """The worker took the job back (it is stopping) and will hand it to another delivery: what
    this one was running is recorded as nothing final, so the redelivery runs it again."""


def _check_withdrawn(ctx: JobContext, step: StepPlan) -> None:
    if ctx.stop.is_set() and not ctx.cancel.is_set():
        raise Withdrawn(f"step {step.name!r}: the job was withdrawn for redelivery")


class CiHandler:
    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        try:
            # The task as the API returned it: its statuses and timestamps are not the plan's.
            payload = CiJobPayload.model_validate(job.payload, extra="ignore")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "payload." + ".".join(str(p) for p in first["loc"])
            raise ConfigurationError(f"invalid ci job: {first['msg']}", where=where) from None
        missing = payload.task.unrecorded()
        if missing is not None:
            where = f"payload.task.{missing}"
            raise ConfigurationError("invalid ci job: the task is not from a recorded plan", where=where)
        recorder, storage = needed(ctx, "ci")
        secrets = dict(ctx.step_secrets)
        task = payload.task
        statuses = StatusReports(recorder)
        statuses.later(StatusChange("task", id_of(task), RunStatus.RUNNING.value))  # with its first step's start
        try:
            with project_checkout(ctx, job, payload.source, task.project_path, "payload.task.project_path") as workdir:
                steps = self._run_steps(job, task, payload, ctx, storage, statuses, secrets, workdir)
        except ForgeError as exc:
            statuses.now(StatusChange("task", id_of(task), RunStatus.FAILED.value, error=str(exc)))
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=str(exc))
        except Exception:
            with contextlib.suppress(Exception):  # what did happen stays recorded; the worker fails the task
                statuses.now()
            raise
        failed = next((s for s in steps if s["status"] != RunStatus.SUCCESS.value), None)
        if failed is not None and failed["status"] == RunStatus.CANCELLED.value and ctx.cancel.is_set():
            error = f"step {failed['name']!r} cancelled: the run was cancelled"
            statuses.now(StatusChange("task", id_of(task), RunStatus.CANCELLED.value, error=error))
            return JobResult(job_id=job.id, status=JobStatus.FAILED, output={"steps": steps}, error=error)
        if failed is not None:
            error = f"step {failed['name']!r} failed: {failed['message'] or 'exit code ' + str(failed['exit_code'])}"
            statuses.now(StatusChange("task", id_of(task), RunStatus.FAILED.value, error=error))
            return JobResult(job_id=job.id, status=JobStatus.FAILED, output={"steps": steps}, error=error)
        statuses.now(StatusChange("task", id_of(task), RunStatus.SUCCESS.value))
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output={"steps": steps})

    def _run_steps(
        self,
        job: Job,
        task: TaskPlan,
        payload: CiJobPayload,
        ctx: JobContext,
        storage: ObjectStore,
        statuses: StatusReports,
        secrets: dict[str, str],
        workdir: Any,
    ) -> list[dict[str, Any]]:
        project = ProjectRef(name=task.project_name, path=task.project_path)
        reports: list[dict[str, Any]] = []
        for index, step in enumerate(task.steps):
            key = log_key(job.run_id, id_of(task), id_of(step))
            _check_withdrawn(ctx, step)
            earlier = statuses.start(step, key)
            if earlier is not None:  # a redelivery: this step ended in an earlier delivery
                reports.append({
                    "id": step.id, "name": step.name, "status": earlier, "exit_code": None,
                    "duration_seconds": 0.0, "message": f"{earlier} in an earlier delivery", "logs_key": key,
                })
                if earlier == RunStatus.SUCCESS.value:
                    continue
                break
            try:
                values = {**secrets, **_own_secrets(step, task, ctx).values}
            except ForgeError as exc:  # a secret that cannot be resolved fails its step, named
                with storage.open_log(key, tuple(secrets.values())) as sink:
                    sink.write_line(str(exc))
                outcome = StepOutcome(status=StepStatus.FAILED, message=str(exc))
            else:
                with storage.open_log(key, tuple(values.values())) as sink:
                    outcome = self._run_step(step, task, project, ctx, payload, values, workdir, sink.write_line)
                # the message travels in the job's result and the task's error: masked like the log
                outcome = outcome.model_copy(update={"message": mask_secrets(outcome.message, values.values())})
            _check_withdrawn(ctx, step)  # stopped by the withdrawal: not a result of the step's
            status = _status(outcome)
            # recorded with the next step's start, or the task's end
            statuses.later(StatusChange("step", id_of(step), status, exit_code=outcome.exit_code, logs_key=key))
            ctx.heartbeat()
            reports.append({
                "id": step.id, "name": step.name, "status": status, "exit_code": outcome.exit_code,
                "duration_seconds": outcome.duration_seconds, "message": outcome.message, "logs_key": key,
            })
            if status != RunStatus.SUCCESS.value:
                after = RunStatus.CANCELLED if status == RunStatus.CANCELLED.value else RunStatus.SKIPPED
                statuses.later(*(StatusChange("step", id_of(later), after.value) for later in task.steps[index + 1:]))
                break
        return reports

    def _run_step(
        self,
        step: StepPlan,
        task: TaskPlan,
        project: ProjectRef,
        ctx: JobContext,
        payload: CiJobPayload,
        secrets: dict[str, str],
        workdir: Any,
        write: Any,
    ) -> StepOutcome:
        """One step through its runner, run again as its ``retries`` allow; every attempt logged."""
        spec, retries = step.spec(), step.retries
        limit = task.step_limit(step)
        attempt = 1
        while True:
            matched = False

            def log(line: str) -> None:
                nonlocal matched
                matched = matched or retries.matches(line)
                write(line)

            context = ExecutionContext(
                workdir=workdir, env=payload.env, secrets=secrets, log=log,
                timeout=limit.total_seconds() if limit else None, stop=ctx.stop, heartbeat=ctx.heartbeat,
            )
            outcome = self._attempt(spec, project, ctx, context)
            if outcome.status not in RETRIED or attempt > retries.attempts:
                return outcome
            if retries.filters and not matched:
                write(f"step {step.name}: not retried: no output line matches a retry filter")
                return outcome
            delay = retries.delay.total_seconds()
            write(f"step {step.name}: attempt {attempt} of {retries.attempts + 1} {outcome.status.value}: "
                  f"{outcome.message or 'exit code ' + str(outcome.exit_code)}; next attempt in {delay:g} s")
            if _pause(ctx, delay):
                write(f"step {step.name}: stopped (the job was withdrawn)")
                return StepOutcome(status=StepStatus.CANCELLED, message="stopped: the job was withdrawn")
            attempt += 1
            write(f"step {step.name}: attempt {attempt} of {retries.attempts + 1}")

    def _attempt(self, spec: StepSpec, project: ProjectRef, ctx: JobContext, context: ExecutionContext) -> StepOutcome:
        """One run of the step's runner; a runner that raises fails the attempt with its error."""
        try:
            runner: StepRunner = ctx.registry.create(Family.STEP_RUNNER, spec.action)
            outcome = runner.run(spec, project, context)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
            context.log(f"step {spec.name}: {message}")
            return StepOutcome(status=StepStatus.FAILED, message=message)
        if not isinstance(outcome, StepOutcome):
            message = f"step runner {spec.action!r} returned {type(outcome).__name__}, not a StepOutcome"
            context.log(message)
            return StepOutcome(status=StepStatus.FAILED, message=message)
        return outcome


RETRIED = frozenset({StepStatus.FAILED, StepStatus.TIMED_OUT})
"""The outcomes a step's retries apply to (a cancelled step is not run again)."""


def _pause(ctx: JobContext, seconds: float) -> bool:
    """Wait between attempts, keeping the job alive; True when the job was withdrawn meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ctx.heartbeat()
        if ctx.stop.wait(min(left, 1.0)):
            return True
    return ctx.stop.is_set()


class StatusReports:
    """A task's status changes, in as few calls as keep them in order and on time: a change that
    can wait (the task's start, a step's end) goes with the next one that cannot (a step's
    start, the task's end), in one call when the recorder takes batches (``record_statuses``:
    one transaction), else one call each."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.waiting: list[StatusChange] = []

    def later(self, *changes: StatusChange) -> None:
        self.waiting += changes

    def now(self, *changes: StatusChange) -> None:
        batch, self.waiting = [*self.waiting, *changes], []
        if batch:
            _unless_closed(_record, self.recorder, batch)

    def start(self, step: StepPlan, key: str) -> str | None:
        """Record the step as running with its log's key (with what waits); None, or the final
        status it already has when the job is a redelivery of one that got past it (a final status
        is final: the API refuses the change)."""
        batch = getattr(self.recorder, "record_statuses", None)
        if batch is not None:
            try:
                batch([*self.waiting, StatusChange("step", id_of(step), RunStatus.RUNNING.value, logs_key=key)])
            except ForgeError as error:
                if error.code != CONFLICT:
                    raise
                # refused as a whole (nothing of it recorded): one call each tells which
            else:
                self.waiting = []
                return None
        self.now()
        return _start(self.recorder, step, key)


def _record(recorder: Any, changes: list[StatusChange]) -> None:
    batch = getattr(recorder, "record_statuses", None)
    if batch is not None:
        batch(changes)
        return
    for change in changes:
        if change.kind == "task":
            recorder.set_task_status(change.entity_id, change.status, error=change.error)
        else:
            recorder.set_step_status(change.entity_id, change.status, exit_code=change.exit_code,
                                     logs_key=change.logs_key)


def _unless_closed(record: Any, *args: Any, **options: Any) -> None:
    """Record a final status; a run cancelled meanwhile already closed it (the API refuses, saying
    so: a conflict), which is the cancellation this records anyway."""
    try:
        record(*args, **options)
    except ForgeError as error:
        if error.code != CONFLICT:
            raise


def _start(recorder: Any, step: StepPlan, key: str) -> str | None:
    """Record the step as running, with its log's key (so its log can be followed while it runs);
    None, or the final status it already has when the job is a redelivery of one that got past it
    (a final status is final: the API refuses the change)."""
    try:
        recorder.set_step_status(step.id, RunStatus.RUNNING.value, logs_key=key)
    except ForgeError as error:
        if error.code != CONFLICT:
            raise
        return str(error.details.get("status") or RunStatus.CANCELLED.value)
    return None
