"""The ``exec`` step runner: the step's ``target`` is a shell command run in the project's folder.

The command gets the worker's environment, then the context's ``env``, then its ``secrets``
(as environment variables); every output line (stdout and stderr, interleaved as they come) goes
to the context's log with secret values masked. Output is read in pieces of at most
:data:`READ_CHUNK` characters (the sdk's ``read_output``), so a line without end costs no more
memory than a short one; the pieces of a longer line after the first start with the continuation
mark. A timeout (the step's or the context's, the
shorter) kills the command's whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

from forge_core.sdk import ExecutionContext, ProjectRef, StepOutcome, StepSpec, StepStatus, read_output

SHELL = "/bin/sh"
READ_CHUNK = 32 * 1024
"""Most characters of output held at once (the log store splits long lines further to its limit)."""


def _limit(step: StepSpec, ctx: ExecutionContext) -> float | None:
    limits = [t for t in (step.timeout.total_seconds() if step.timeout else None, ctx.timeout) if t]
    return min(limits) if limits else None


INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM", "SHELL")
"""The worker's variables a step sees; the rest (the worker's own credentials above all: its API
token, storage keys) stay out. A step gets more only through its context's env and secrets."""


def _inherited() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED if name in os.environ}


class ExecStepRunner:
    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        if not step.target.strip():
            ctx.log(f"step {step.name}: no command (the step's target is empty)")
            return StepOutcome(status=StepStatus.FAILED, message="the step's target (the command) is empty")
        secrets = tuple(ctx.secrets.values())
        env = {**_inherited(), **ctx.env, **ctx.secrets}
        limit = _limit(step, ctx)
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                [SHELL, "-c", step.target],
                cwd=ctx.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        except OSError as exc:
            message = f"cannot start {SHELL} in {ctx.workdir}: {exc}"
            ctx.log(message)
            return StepOutcome(status=StepStatus.FAILED, message=message)
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit, expire) if limit else None
        if timer is not None:
            timer.daemon = True
            timer.start()

        def watch_stop() -> None:  # the work was withdrawn: the step's whole process group goes
            while process.poll() is None:
                if ctx.stop.wait(0.2):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    return

        threading.Thread(target=watch_stop, daemon=True, name=f"stop-{step.name}").start()
        try:
            assert process.stdout is not None
            for piece in read_output(process.stdout, secrets, READ_CHUNK):
                ctx.log(piece)
            exit_code = process.wait()
        finally:
            if timer is not None:
                timer.cancel()
        duration = time.monotonic() - started
        if ctx.stop.is_set():
            ctx.log(f"step {step.name}: stopped (the job was withdrawn)")
            return StepOutcome(status=StepStatus.CANCELLED, exit_code=exit_code, duration_seconds=duration,
                               message="stopped: the job was withdrawn")
        if timed_out.is_set():
            ctx.log(f"step {step.name}: timed out after {limit:g} s")
            return StepOutcome(
                status=StepStatus.TIMED_OUT, exit_code=exit_code, duration_seconds=duration,
                message=f"timed out after {limit:g} s",
            )
        if exit_code != 0:
            return StepOutcome(
                status=StepStatus.FAILED, exit_code=exit_code, duration_seconds=duration,
                message=f"exited with code {exit_code}",
            )
        return StepOutcome(status=StepStatus.SUCCESS, exit_code=0, duration_seconds=duration)
