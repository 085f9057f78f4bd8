"""Running synchronous job handlers off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_thread(function: Callable[..., T], *args: Any, name: str = "forge-job") -> asyncio.Future[T]:
    """``function(*args)`` in a daemon thread, as a future of the running loop.

    Not the loop's default executor: its threads are joined at exit, so a handler still running
    when the worker shuts down (its job released for redelivery) would hold the process open.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def target() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # handed to the awaiting coroutine, whatever it is
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
