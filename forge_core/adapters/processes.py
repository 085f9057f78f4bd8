"""Child processes that never outlive their parent, whatever kills it.

Three means, for three ways a descendant can escape:

- :func:`die_with_parent` (a ``preexec_fn``) asks the kernel to SIGKILL the child when the thread
  that started it dies (``PR_SET_PDEATHSIG``): for a direct child such as a server.
- :func:`kill_group` kills a process group: a step's shell and the background children it left.
- A *mark*: an environment variable every descendant inherits, even one that left the step's
  session with ``setsid`` (a daemon). :func:`kill_marked` kills every process of this user that
  carries a mark; the process-wide :class:`Guard` starts one small watchdog process that does so
  for all of this process's marks when this process ends — a graceful stop as much as a SIGKILL
  or the OOM killer, since the watchdog waits for the end of a pipe only this process writes.

No cgroups, so a descendant that drops its environment (``env -i``) and leaves the session is
not found; everything else a step starts is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable

MARK_VARIABLE = "FORGE_PROCESS_MARK"
"""The environment variable a guarded process and all its descendants carry."""

PR_SET_PDEATHSIG = 1
_KILL_ROUNDS = 50
"""Scans of /proc before giving up on processes that keep forking while being killed."""


def _prctl() -> object | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        return None


_PRCTL = _prctl()  # looked up once, in the parent: the child between fork and exec only calls it


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when the thread that started it dies (Linux;
    elsewhere nothing). The kernel's "parent" is that *thread*: start long-lived children from one
    that lives as long as they should. The signal survives ``exec``, so a shell that execs its last
    command passes it on. A parent already gone before the signal is armed means the child goes
    at once."""
    parent = os.getpid()

    def arm() -> None:
        if _PRCTL is None:
            return
        _PRCTL(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)  # type: ignore[operator]
        if os.getppid() != parent:  # orphaned before the signal was armed
            os.kill(os.getpid(), signum)

    return arm


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def marked(mark: str, since: int | None = None) -> list[int]:
    """The pids of this user's processes whose environment carries ``mark`` (or a mark under it:
    ``mark`` followed by ``/``). ``since``: only processes started after pid ``since`` was (pids
    are handed out in order; after a wrap of the pid counter, all are read)."""
    exact = f"{MARK_VARIABLE}={mark}".encode()
    found: list[int] = []
    me = os.getpid()
    if since is not None and _last_pid() < since:
        since = None  # the counter wrapped: newer processes may have lower pids
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me or (since is not None and pid < since):
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or another user's
            continue
        for entry in environ.split(b"\0"):
            if entry == exact or entry.startswith(exact + b"/"):
                found.append(pid)
                break
    return found


def _last_pid() -> int:
    try:
        with open("/proc/sys/kernel/ns_last_pid") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 0  # unknown: read all


def kill_marked(mark: str, since: int | None = None) -> int:
    """SIGKILL every process carrying ``mark`` until none is left; how many were killed."""
    killed = 0
    for _ in range(_KILL_ROUNDS):
        pids = marked(mark, since)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


WATCHDOG = """
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
while sys.stdin.buffer.read(65536):
    pass
sys.path.insert(0, sys.argv[2])
from forge_core.adapters.processes import kill_marked
kill_marked(sys.argv[1])
"""
"""The watchdog: wait for the parent's end (the pipe closes), then kill what it marked."""


class Guard:
    """This process's marks and the watchdog that kills their processes when it ends."""

    _instance: Guard | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.root = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._watchdog: int | None = None  # its pid; this process holds the write end of its stdin
        self._pipe: int | None = None

    @classmethod
    def here(cls) -> Guard:
        """The guard of this process, its watchdog started on first use (and again after a fork)."""
        with cls._lock:
            guard = cls._instance
            if guard is None or not guard.root.startswith(f"{os.getpid()}-"):
                guard = cls._instance = Guard()
            guard._ensure_watchdog()
            return guard

    def new_mark(self) -> str:
        """A mark of its own for one guarded process tree (under this process's root mark)."""
        return f"{self.root}/{uuid.uuid4().hex[:12]}"

    def _ensure_watchdog(self) -> None:
        if self._watchdog is not None:
            try:
                pid, _ = os.waitpid(self._watchdog, os.WNOHANG)
            except ChildProcessError:
                pid = self._watchdog
            if pid == 0:
                return  # still watching
            if self._pipe is not None:
                os.close(self._pipe)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        read, write = os.pipe()  # both close-on-exec: no other child holds the pipe open
        env = {k: v for k, v in os.environ.items() if k != MARK_VARIABLE}
        try:
            # Not a Popen: the watchdog is meant to outlive this process, never to be waited for.
            self._watchdog = os.posix_spawn(
                sys.executable, [sys.executable, "-c", WATCHDOG, self.root, package_root], env,
                file_actions=[(os.POSIX_SPAWN_DUP2, read, 0)],
                setsid=True,  # not in this process's group: a Ctrl-C or a group kill spares it
            )
        finally:
            os.close(read)
        self._pipe = write


class ProcessTree:
    """One guarded process tree (a step's command and whatever it starts): start its root with
    :attr:`env` added to its environment and ``start_new_session=True``; :meth:`kill` ends the
    root's process group and every process that carries the tree's mark, wherever it went."""

    def __init__(self) -> None:
        self.mark = Guard.here().new_mark()
        self.env = {MARK_VARIABLE: self.mark}

    def kill(self, pgid: int | None = None) -> int:
        """Kill the tree (its root's group ``pgid`` first, when given); how many marked processes
        outlived the group and were killed."""
        if pgid is not None:
            kill_group(pgid)
        # What the tree started came after its root: only the processes newer than it are read.
        return kill_marked(self.mark, since=pgid)
