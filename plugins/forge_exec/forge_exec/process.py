"""Running a shell command for the step runner and the producer: one way to start, read, time out
and stop it.

The command (``/bin/sh -c``) runs in its own process group, so a timeout or a stop kills its
children too. Every output line (stdout and stderr, interleaved as they come) goes to ``log`` with
secret values masked. Output is read in pieces of at most :data:`READ_CHUNK` characters (the sdk's
``read_output``), so a line without end costs no more memory than a short one; the pieces of a
longer line after the first start with the continuation mark. The last :data:`TAIL_LINES` pieces
are kept for an error message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from forge_core.sdk import die_with_parent, process_groups, read_output

SHELL = "/bin/sh"
READ_CHUNK = 32 * 1024
"""Most characters of output held at once (the log store splits long lines further to its limit)."""
TAIL_LINES = 20
"""Output lines an error quotes."""

INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM", "SHELL")
"""The worker's variables a command sees; the rest (the worker's own credentials above all: its API
token, storage keys) stay out. A command gets more only through its context's env and secrets."""


def inherited() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED if name in os.environ}


def shortest(*limits: float | None) -> float | None:
    """The shortest of the limits that are set (None: no limit)."""
    given = [limit for limit in limits if limit]
    return min(given) if given else None


@dataclass(frozen=True)
class Finished:
    """How a command ended: ``exit_code`` (negative: killed by that signal), whether it ran out of
    time or was stopped, how long it took, and its last output lines (masked)."""

    exit_code: int
    duration: float
    timed_out: bool
    stopped: bool
    tail: tuple[str, ...]


class CannotStart(Exception):
    """The shell could not be started (the folder is missing, the shell is not there)."""


def run_command(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    secrets: Iterable[str],
    timeout: float | None,
    stop: threading.Event,
) -> Finished:
    """Run ``command`` to its end, its time limit or ``stop``, whichever comes first."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [SHELL, "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group, killed whole on timeout or stop
            preexec_fn=die_with_parent(),  # and killed by the kernel if the worker dies
        )
    except OSError as exc:
        raise CannotStart(f"cannot start {SHELL} in {cwd}: {exc}") from None
    process_groups.watch(process.pid)  # its group goes too if the worker dies
    timed_out = threading.Event()

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def expire() -> None:
        timed_out.set()
        kill()

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()

    def watch_stop() -> None:  # the work was withdrawn: the whole process group goes
        while process.poll() is None:
            if stop.wait(0.2):
                kill()
                return

    threading.Thread(target=watch_stop, daemon=True, name=f"stop-{process.pid}").start()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        assert process.stdout is not None
        for piece in read_output(process.stdout, tuple(secrets), READ_CHUNK):
            tail.append(piece)
            log(piece)
        exit_code = process.wait()
    finally:
        if timer is not None:
            timer.cancel()
        process_groups.forget(process.pid)
    return Finished(
        exit_code=exit_code,
        duration=time.monotonic() - started,
        timed_out=timed_out.is_set(),
        stopped=stop.is_set(),
        tail=tuple(tail),
    )
