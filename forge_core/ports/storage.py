"""The object-storage port: step logs and large job results, addressed by ``/``-separated keys.

Keys: ``logs/<run>/<task>/<step>.log`` for step logs, ``results/<run>/<job>.json`` for results.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import IO, Protocol


class LineSink(Protocol):
    def write_line(self, line: str) -> None: ...


class ObjectStore(Protocol):
    def write_bytes(self, key: str, data: bytes) -> None: ...

    def read_bytes(self, key: str) -> bytes:
        """The object's content; FileNotFoundError if there is none."""
        ...

    def open_bytes(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A binary reader of the object, to read it in chunks (a log may be large);
        FileNotFoundError if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def open_log(self, key: str, secrets: tuple[str, ...] = ()) -> AbstractContextManager[LineSink]:
        """A sink writing lines to ``key`` as they come, every secret value masked."""
        ...

    def location(self, key: str) -> str:
        """Where ``key`` is, for people (a path or a URL)."""
        ...


def log_key(run_id: str, task_id: str, step_id: str) -> str:
    return f"logs/{run_id}/{task_id}/{step_id}.log"


def result_key(run_id: str, job_id: str) -> str:
    return f"results/{run_id}/{job_id}.json"
