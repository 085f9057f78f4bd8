"""The ``earthly`` step runner: runs a step's Earthly target (``target``, e.g. ``+test`` or
``./sub+lint``) in the project's folder, once per platform of its ``settings``, with the step's
``secrets`` (masked in every log line). The step fails when any platform fails, and its message
names every failed platform. The step's ``retries`` are applied by the core's CI handler, which
runs the whole step again (for every step runner); running them here too would multiply the
attempts, so each call runs each platform once. The shorter of the step's and the context's timeout
bounds the whole step; on it, or on ``stop``, the running process group is killed."""

from __future__ import annotations

import os
import time

from pydantic import ValidationError

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ProjectRef,
    StepOutcome,
    StepRetries,
    StepSpec,
    StepStatus,
)
from forge_earthly.command import Invocation, environment, find_binary, resolve_target, secret_ids
from forge_earthly.runs import run_platforms
from forge_earthly.settings import EarthlyStepSettings


def _limit(step: StepSpec, ctx: ExecutionContext) -> float | None:
    limits = [t for t in (step.timeout.total_seconds() if step.timeout else None, ctx.timeout) if t]
    return min(limits) if limits else None


class EarthlyStepRunner:
    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        started = time.monotonic()
        where = f"step {step.name} (project {project.name})"
        try:
            settings = EarthlyStepSettings.model_validate(step.settings)
            target, cwd = resolve_target(step.target, ctx.workdir, project.path, where=where)
            env = environment(ctx.env, ctx.secrets, os.environ)
            invocation = Invocation(
                binary=find_binary(settings.binary, env, where=where), target=target, cwd=cwd,
                args=settings.args, secrets=secret_ids(ctx.secrets, where=where), config=settings.config,
                allow_privileged=settings.allow_privileged, ci=settings.ci,
            )
        except (ConfigurationError, ValidationError) as error:
            message = str(error) if isinstance(error, ConfigurationError) else f"{where}: {error}"
            ctx.log(message)
            return StepOutcome(status=StepStatus.FAILED, message=message, duration_seconds=time.monotonic() - started)
        limit = _limit(step, ctx)
        deadline = started + limit if limit else None
        runs = run_platforms(invocation, settings.platforms, ctx=ctx, env=env, retries=StepRetries(),
                             deadline=deadline)
        duration = time.monotonic() - started
        last = runs[-1].last
        if last.stopped:
            ctx.log(f"step {step.name}: stopped (the job was withdrawn)")
            return StepOutcome(status=StepStatus.CANCELLED, exit_code=last.exit_code, duration_seconds=duration,
                               message="stopped: the job was withdrawn")
        if last.timed_out:
            ctx.log(f"step {step.name}: timed out after {limit:g} s")
            return StepOutcome(status=StepStatus.TIMED_OUT, exit_code=last.exit_code, duration_seconds=duration,
                               message=f"timed out after {limit:g} s")
        failed = [run for run in runs if not run.last.succeeded]
        if failed:
            exit_code = next((r.last.exit_code for r in failed if r.last.exit_code), 1)
            message = f"earthly {target} failed: " + "; ".join(run.failure() for run in failed)
            ctx.log(message)
            return StepOutcome(status=StepStatus.FAILED, exit_code=exit_code, duration_seconds=duration,
                               message=message)
        return StepOutcome(status=StepStatus.SUCCESS, exit_code=0, duration_seconds=duration)
