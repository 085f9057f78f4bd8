"""Child processes that never outlive the process that started them.

``die_with_parent()`` makes a ``preexec_fn`` for :class:`subprocess.Popen`: the kernel sends the child
a signal (SIGKILL unless told otherwise) when its parent dies, however it dies — SIGKILL and the
OOM killer included, where no cleanup code of the parent runs. Linux only (``prctl`` with
``PR_SET_PDEATHSIG``, through ctypes); elsewhere it does nothing. The signal survives ``exec`` (not
a set-uid one), so a shell that execs its last command passes it on. Two things to know:

- the kernel's "parent" is the *thread* that forked the child: start long-lived children from a
  thread that lives as long as they should (the main thread, or one kept for the purpose);
- it covers the direct child only: what a child in its own process group starts is covered by
  :data:`process_groups` (a keeper process that kills the groups still open when this process dies).

    subprocess.Popen([...], preexec_fn=die_with_parent())
    child = subprocess.Popen([...], preexec_fn=die_with_parent(), start_new_session=True)
    process_groups.watch(child.pid)
    ...  # child.wait(); os.killpg(child.pid, signal.SIGKILL) for its leftovers
    process_groups.forget(child.pid)
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
"""Looked up here, in the parent: the child between fork and exec only calls it."""


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when the thread that starts it dies. A parent
    already gone before the signal is armed (it died between the fork and then) means the child
    goes at once."""
    parent = os.getpid()

    def arm() -> None:
        if _prctl is None:
            return
        _prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # orphaned before the signal was armed
            os.kill(os.getpid(), signum)

    return arm


KEEPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[:1], int(line[1:])
    (groups.add if sign == "+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""
"""The keeper: reads ``+pgid``/``-pgid`` lines; at end of input (its starter exited or was
killed: the kernel closes the pipe either way) it kills every process group still listed."""


class GroupKeeper:
    """Process groups killed when this process dies, however it dies.

    A child started in its own process group (``start_new_session=True``) escapes
    :func:`die_with_parent` for everything it starts: the kernel signals the direct child only.
    The keeper is a small process of its own holding the list of groups still open; when this
    process exits, its end of the pipe closes and the keeper kills each. ``watch`` a group when
    it starts and ``forget`` it once it is over (so a number the system reuses is never hit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keeper: subprocess.Popen[str] | None = None

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def _send(self, line: str) -> None:
        with self._lock:
            if self._keeper is None or self._keeper.poll() is not None:
                self._keeper = subprocess.Popen(
                    [sys.executable, "-S", "-c", KEEPER], stdin=subprocess.PIPE, text=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C at the terminal is for its starter, not for it
                )
            assert self._keeper.stdin is not None
            try:
                self._keeper.stdin.write(line)
                self._keeper.stdin.flush()
            except OSError:  # the keeper is gone (killed on its own): the next call starts another
                self._keeper = None


process_groups = GroupKeeper()
"""This process's keeper (started at the first ``watch``)."""
