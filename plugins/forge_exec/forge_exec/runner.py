"""The ``exec`` step runner: the step's ``target`` is a shell command run in the project's folder.

The command gets the worker's environment (the variables of :data:`~forge_exec.process.INHERITED`),
then the context's ``env``, then its ``secrets`` (as environment variables); its output goes to
the context's log with secret values masked (see :mod:`forge_exec.process`). A timeout (the
step's or the context's, the shorter) kills the command's whole process group.
"""

from __future__ import annotations

from forge_core.sdk import ExecutionContext, ProjectRef, StepOutcome, StepSpec, StepStatus
from forge_exec.process import READ_CHUNK, CannotStart, inherited, run_command, shortest

__all__ = ["READ_CHUNK", "ExecStepRunner"]


class ExecStepRunner:
    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        if not step.target.strip():
            ctx.log(f"step {step.name}: no command (the step's target is empty)")
            return StepOutcome(status=StepStatus.FAILED, message="the step's target (the command) is empty")
        limit = shortest(step.timeout.total_seconds() if step.timeout else None, ctx.timeout)
        try:
            finished = run_command(
                step.target, cwd=ctx.workdir, env={**inherited(), **ctx.env, **ctx.secrets}, log=ctx.log,
                secrets=ctx.secrets.values(), timeout=limit, stop=ctx.stop,
            )
        except CannotStart as exc:
            ctx.log(str(exc))
            return StepOutcome(status=StepStatus.FAILED, message=str(exc))
        code, duration = finished.exit_code, finished.duration
        if finished.stopped:
            ctx.log(f"step {step.name}: stopped (the job was withdrawn)")
            return StepOutcome(status=StepStatus.CANCELLED, exit_code=code, duration_seconds=duration,
                               message="stopped: the job was withdrawn")
        if finished.timed_out:
            ctx.log(f"step {step.name}: timed out after {limit:g} s")
            return StepOutcome(status=StepStatus.TIMED_OUT, exit_code=code, duration_seconds=duration,
                               message=f"timed out after {limit:g} s")
        if code != 0:
            return StepOutcome(status=StepStatus.FAILED, exit_code=code, duration_seconds=duration,
                               message=f"exited with code {code}")
        return StepOutcome(status=StepStatus.SUCCESS, exit_code=0, duration_seconds=duration)
