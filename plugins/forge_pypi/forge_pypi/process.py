"""Running a tool as a child process: its output streamed line by line, ``stop`` and the time limit
honoured (the process group is killed, never left behind)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from forge_core.sdk import ExecutionContext, ForgeError, WorkWithdrawn, mask_secrets


class ToolFailed(ForgeError):
    """A tool exited non-zero; ``output`` holds its (masked) last lines."""

    code = "tool_failed"

    def __init__(self, message: str, *, where: str, returncode: int, output: str) -> None:
        super().__init__(message, where=where)
        self.returncode = returncode
        self.output = output


def run_tool(
    command: Sequence[str],
    *,
    ctx: ExecutionContext,
    cwd: Path,
    env: Mapping[str, str],
    what: str,
    where: str,
    mask: Sequence[str] = (),
) -> str:
    """Run ``command``, sending each output line to ``ctx.log``; its output. Lines are masked of
    ``ctx.secrets`` and of ``mask`` (values derived from them, such as a password split off).

    Raises WorkWithdrawn when ``ctx.stop`` is set, ToolFailed on a non-zero exit or the time limit.
    """
    if ctx.stop.is_set():
        raise WorkWithdrawn(f"{what} withdrawn before it started", where=where)
    secrets = [*ctx.secrets.values(), *mask]
    lines: list[str] = []
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group, so a kill reaches its children too
    )

    def pump() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = mask_secrets(raw.rstrip("\n"), secrets)
            lines.append(line)
            ctx.log(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = None if ctx.timeout is None else time.monotonic() + ctx.timeout
    try:
        while process.poll() is None:
            if ctx.stop.wait(0.1):
                _kill(process)
                raise WorkWithdrawn(f"{what} withdrawn while running", where=where)
            if deadline is not None and time.monotonic() > deadline:
                _kill(process)
                raise ToolFailed(f"{what} exceeded its time limit of {ctx.timeout:g}s", where=where,
                                 returncode=-1, output="\n".join(lines[-40:]))
    finally:
        reader.join(timeout=5)
    output = "\n".join(lines[-40:])
    if process.returncode != 0:
        raise ToolFailed(f"{what} exited with {process.returncode}", where=where,
                         returncode=process.returncode, output=output)
    return output


def _kill(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
