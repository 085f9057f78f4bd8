"""One delivery of a job at a time on a machine: a lock file per job id, held while it runs.

A job released for redelivery (its worker stopping, its ack deadline passed) can reach another
worker while its earlier delivery is still being stopped. The later delivery waits for the
earlier one's lock (an ``flock``, released by the kernel when its holder ends, however it ends),
keeping its own job alive meanwhile, and gives up with an error naming the holder after
``wait_seconds``. The file says who holds it (pid and host), for that message and for an operator.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from forge_core.domain.errors import ForgeError

POLL = 0.1
"""Seconds between attempts at a lock another delivery holds."""


class StillRunning(ForgeError):
    """An earlier delivery of the job still holds it."""

    code = "job_still_running"


class JobClaims:
    """The lock files of one worker cache (``<cache>/jobs/<job id>.lock``)."""

    def __init__(self, folder: Path, wait_seconds: float) -> None:
        self.folder = folder
        self.wait_seconds = wait_seconds

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.lock"

    @contextmanager
    def holding(self, job_id: str, *, keep_alive: Callable[[], None], stopped: Callable[[], bool]) -> Iterator[None]:
        """The job's lock for the block; while another delivery holds it, ``keep_alive`` is
        called every second or so; StillRunning after ``wait_seconds`` (or once ``stopped``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(job_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._acquire(fd, path, job_id, keep_alive, stopped)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _acquire(
        self, fd: int, path: Path, job_id: str, keep_alive: Callable[[], None], stopped: Callable[[], bool]
    ) -> None:
        deadline = time.monotonic() + self.wait_seconds
        beat = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            now = time.monotonic()
            if now >= deadline or stopped():
                holder = _holder(path)
                raise StillRunning(
                    f"job {job_id} is still running in an earlier delivery ({holder}) after "
                    f"{self.wait_seconds:g}s; it is not run twice at once",
                    where=str(path),
                )
            if now - beat >= 1.0:
                keep_alive()
                beat = now
            time.sleep(POLL)


def _holder(path: Path) -> str:
    try:
        pid, _, host = path.read_text().strip().partition(" ")
    except OSError:
        return "holder unknown"
    return f"pid {pid} on {host}" if pid else "holder unknown"
