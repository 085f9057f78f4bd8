"""Children that die with their parent, however it dies (forge_core.adapters.processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

STARTER = textwrap.dedent("""
    import os, subprocess, sys, time
    from forge_core.adapters.processes import die_with_parent, process_groups
    marker, grouped = sys.argv[1][::-1], sys.argv[2] == "grouped"  # only the sleepers name it
    sleeper = f"{sys.executable} -c 'import time; time.sleep(300)' {marker}"
    child = subprocess.Popen(["/bin/sh", "-c", 'eval "$SLEEPER" & eval "$SLEEPER"; wait'],
                             env={**os.environ, "SLEEPER": sleeper}, preexec_fn=die_with_parent(),
                             start_new_session=True)
    if grouped:
        process_groups.watch(child.pid)
    print("started", flush=True)
    time.sleep(300)
""")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def killed_starter_leaves(grouped: bool) -> list[int]:
    """Start a starter whose child (its own process group) starts two sleepers; SIGKILL the
    starter; the sleepers still there after a few seconds."""
    marker = f"sleeper-{uuid.uuid4().hex}"
    starter = subprocess.Popen([sys.executable, "-c", STARTER, marker[::-1], "grouped" if grouped else "alone"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None and starter.stdout.readline() == "started\n"
        deadline = time.monotonic() + 10
        while len(processes_mentioning(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes_mentioning(marker)) == 2, "the sleepers did not start"
    finally:
        starter.kill()
        starter.wait()
    deadline = time.monotonic() + 5
    while processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes_mentioning(marker)
    for pid in left:  # what the test started is cleaned up either way
        subprocess.run(["kill", "-9", str(pid)], check=False)
    return left


def test_a_watched_process_group_dies_with_its_starter() -> None:
    assert killed_starter_leaves(grouped=True) == []


def test_without_the_keeper_the_group_outlives_its_starter() -> None:
    """What the keeper is for: the kernel's parent-death signal reaches the direct child only."""
    assert len(killed_starter_leaves(grouped=False)) == 2
