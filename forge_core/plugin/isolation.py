"""Lifecycle hooks are isolated from each other by wrapping each implementation.

pluggy stops a hook call at the first implementation that raises. Lifecycle hooks are
notifications, so each of their implementations is registered wrapped: a plain one that raises,
or a wrapper (``wrapper=True`` or an old-style ``hookwrapper``) that raises before or after its
``yield``, is reported with its plugin's name and the call goes on with the others, in pluggy's
order, through pluggy.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from typing import Any

Report = Callable[[str, str, BaseException], None]
"""``report(hook name, plugin id, exception)``."""


def isolated(function: Callable[..., Any], hook: str, plugin: str, report: Report) -> Callable[..., Any]:
    """``function`` wrapped so that what it raises is reported instead of propagated.

    The wrapper keeps the function's hookimpl marker and its signature (pluggy reads both).
    """
    if inspect.isgeneratorfunction(function):
        return _isolated_wrapper(function, hook, plugin, report)

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            report(hook, plugin, exc)
            return None

    return call


def _isolated_wrapper(function: Callable[..., Any], hook: str, plugin: str, report: Report) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrap(*args: Any) -> Generator[None, Any, Any]:
        inner = function(*args)
        try:
            next(inner)
        except Exception as exc:  # raised before its yield: the others still run
            report(hook, plugin, exc)
            return (yield)
        outcome = yield  # new style: the result; old style: a pluggy.Result
        try:
            inner.send(outcome)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:
            report(hook, plugin, exc)
            return outcome
        report(hook, plugin, RuntimeError("the wrapper yielded more than once"))
        return outcome

    return wrap
