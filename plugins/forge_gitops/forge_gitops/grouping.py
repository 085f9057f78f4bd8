"""Group commit: the deployment jobs that wait for one worker's turn at a remote land together.

A worker's jobs for one remote take turns (racing its own threads would only waste push
attempts). While one turn pushes, the jobs that arrive queue up; the next job to get the turn
takes every queued job whose pointer files do not overlap its own batch and lands them all in one
commit, as a database's group commit flushes every waiting transaction at once. A job whose work
another turn did returns that turn's outcome without a turn of its own. So twenty jobs arriving at
once cost a worker one push, not twenty (the turn lingers a moment, a few milliseconds, for the
jobs started with it), and the latency of each is a push or two, not its place
in a queue.

Jobs deploying the same pointer file never share a batch: the later one goes in a later commit,
so a pointer is never written twice in one commit and the deployments' states follow landing
order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class Member(Generic[T]):
    """One job in the queue: its ``work`` (what the batch lands) and the files it writes."""

    work: T
    paths: frozenset[Hashable]
    done: bool = False
    error: BaseException | None = None
    batch_size: int = 0
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)


class GroupCommit(Generic[T]):
    """The turns at one remote: ``submit`` returns once the member's batch has landed (or raises
    what landing it raised). ``land`` is called with each batch, one at a time, the caller first."""

    def __init__(self, land: Callable[[Sequence[T]], None], *, max_batch: int, linger: float = 0.0) -> None:
        self._land = land
        self._max_batch = max(1, max_batch)
        self._linger = linger
        self._turn = threading.Lock()
        self._guard = threading.Lock()
        self._queue: list[Member[T]] = []

    def submit(self, work: T, paths: frozenset[Hashable]) -> Member[T]:
        member = Member(work, paths)
        with self._guard:
            self._queue.append(member)
        with self._turn:
            if not member.done:  # nobody took it while it waited: this turn lands its batch
                if self._linger > 0 and self._max_batch > 1:
                    time.sleep(self._linger)  # jobs started together arrive a few ms apart: gather them
                batch = self._take(member)
                try:
                    self._land([m.work for m in batch])
                except BaseException as error:  # every member of the batch gets the same answer
                    for taken in batch:
                        taken.error = error
                    raise
                finally:
                    for taken in batch:
                        taken.done, taken.batch_size = True, len(batch)
                        taken._finished.set()
        member._finished.wait()
        if member.error is not None:
            raise member.error
        return member

    def _take(self, first: Member[T]) -> list[Member[T]]:
        """``first`` and the queued members after it that write none of the batch's files."""
        with self._guard:
            batch, written = [first], set(first.paths)
            for queued in self._queue:
                if len(batch) >= self._max_batch:
                    break
                if queued is first or written & queued.paths:
                    continue
                batch.append(queued)
                written |= queued.paths
            taken = set(map(id, batch))
            self._queue = [m for m in self._queue if id(m) not in taken]
            return batch
