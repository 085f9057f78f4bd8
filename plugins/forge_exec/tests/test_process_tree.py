"""What a step's command starts ends with it: background children, setsid daemons, and all of it
when the process running the step is killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from forge_exec.process import run_command

DAEMON = "setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' </dev/null >/dev/null 2>&1 &"
"""A daemon that leaves the step's session (and its output pipe) and writes its pid."""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def wait_for_pid(pidfile: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, f"{pidfile} was not written"
        time.sleep(0.02)
    return int(pidfile.read_text())


def wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # do not leave it behind the test
            return False
        time.sleep(0.02)
    return True


def run(command: str, cwd: Path, stop: threading.Event | None = None, timeout: float | None = None) -> object:
    lines: list[str] = []
    return run_command(command, cwd=cwd, env={"PATH": os.environ["PATH"]}, log=lines.append, secrets=(),
                       timeout=timeout, stop=stop or threading.Event())


def test_a_background_child_does_not_keep_the_step_open_nor_outlive_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    finished = run(f"sleep 300 & echo $! > {pidfile}; echo done", tmp_path)
    assert time.monotonic() - started < 10  # not the 300 s of the child holding the output pipe
    assert finished.exit_code == 0  # type: ignore[attr-defined]
    assert wait_dead(wait_for_pid(pidfile), timeout=2)


def test_a_setsid_daemon_does_not_outlive_its_step(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    finished = run(DAEMON.format(pidfile=pidfile) + f" while [ ! -s {pidfile} ]; do sleep 0.01; done", tmp_path)
    assert finished.exit_code == 0  # type: ignore[attr-defined]
    assert wait_dead(wait_for_pid(pidfile), timeout=2)


def test_a_stop_kills_the_whole_tree_daemons_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    finished = run(DAEMON.format(pidfile=pidfile) + " sleep 300", tmp_path, stop=stop)
    assert finished.stopped  # type: ignore[attr-defined]
    assert wait_dead(wait_for_pid(pidfile), timeout=2)


RUNNER = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from forge_exec.process import run_command
    folder = Path(sys.argv[1])
    command = "sleep 300 & echo $! > child.pid; " + sys.argv[2] + " sleep 300"
    run_command(command, cwd=folder, env={"PATH": os.environ["PATH"]}, log=print, secrets=(),
                timeout=None, stop=threading.Event())
""")


def test_the_steps_of_a_process_killed_minus_nine_die_with_it(tmp_path: Path) -> None:
    """The watchdog: nothing in the dying process can act, so another process does."""
    daemon = DAEMON.format(pidfile=tmp_path / "daemon.pid")
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path), daemon], cwd=tmp_path)
    try:
        child, escaped = wait_for_pid(tmp_path / "child.pid"), wait_for_pid(tmp_path / "daemon.pid")
        time.sleep(0.2)  # the shell is in its `sleep 300`
        assert alive(child) and alive(escaped)
    finally:
        runner.kill()
        runner.wait()
    assert wait_dead(child, timeout=5) and wait_dead(escaped, timeout=5)
