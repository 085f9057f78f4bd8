"""One ``earthly`` run as a child process: every output line masked and sent to the log, the
deadline and the stop event honoured by killing the run's whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.sdk import StepRetries, read_output

READ_CHUNK = 32 * 1024
TAIL_LINES = 20


@dataclass
class Attempt:
    """How one run ended."""

    exit_code: int | None = None
    output_seen: bool = False
    """Whether the run printed anything (no output at all is a hard failure: nothing to retry on)."""
    matched_filter: bool = False
    timed_out: bool = False
    stopped: bool = False
    start_error: str = ""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.stopped or self.start_error)


def run_once(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    secrets: Sequence[str],
    log: Callable[[str], None],
    stop: threading.Event,
    deadline: float | None,
    retries: StepRetries,
) -> Attempt:
    """Run ``argv`` to its end, the deadline (``time.monotonic()``) or ``stop``."""
    attempt = Attempt()
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a kill reaches BuildKit helpers too
        )
    except OSError as exc:
        attempt.start_error = f"cannot start {argv[0]} in {cwd}: {exc}"
        log(attempt.start_error)
        return attempt

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def watch() -> None:
        while process.poll() is None:
            if stop.wait(0.1):
                attempt.stopped = True
                kill()
                return
            if deadline is not None and time.monotonic() >= deadline:
                attempt.timed_out = True
                kill()
                return

    watcher = threading.Thread(target=watch, daemon=True, name="earthly-watch")
    watcher.start()
    assert process.stdout is not None
    for piece in read_output(process.stdout, secrets, READ_CHUNK):
        attempt.output_seen = attempt.output_seen or bool(piece.strip())
        if retries.filters and not attempt.matched_filter and retries.matches(piece):
            attempt.matched_filter = True
        attempt.tail.append(piece)
        log(piece)
    attempt.exit_code = process.wait()
    watcher.join()
    return attempt
