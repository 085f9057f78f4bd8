"""Running synchronous job handlers off the event loop, on a fixed set of daemon threads.

Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so a handler still running
when the worker shuts down (its job already released for redelivery) would hold the process open.
Threads are started once, not per job: starting a thread costs the loop more than a no-op job.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Work = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class HandlerThreads:
    def __init__(self, count: int, name: str = "forge-job") -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``function(*args)`` on one of the threads, as a future of the running loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, function, args))
        return future

    def close(self) -> None:
        """Let idle threads end; a thread still running a handler ends with it (or with the process)."""
        for _ in self._threads:
            self._queue.put(None)

    def _serve(self) -> None:
        while (work := self._queue.get()) is not None:
            loop, future, function, args = work
            try:
                outcome: Callable[[], None] = _result(future, function(*args))
            except BaseException as exc:  # handed to the awaiting coroutine, whatever it is
                outcome = _error(future, exc)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(outcome)


def _result(future: asyncio.Future[Any], value: Any) -> Callable[[], None]:
    return lambda: None if future.done() else future.set_result(value)


def _error(future: asyncio.Future[Any], exc: BaseException) -> Callable[[], None]:
    return lambda: None if future.done() else future.set_exception(exc)
