"""A `forge run` killed outright (SIGKILL: no cleanup code of it runs, as with the OOM killer)
leaves nothing running: its private nats-server and its steps' processes die with it, and its
run, whose lease nobody renews any more, is closed failed at the next look."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

Forge = Callable[..., subprocess.CompletedProcess[str]]


def processes_mentioning(text: str) -> list[int]:
    """The pids whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_killed_forge_run_leaves_no_process_and_its_run_is_closed_failed(
    forge: Forge, example: Path, commit_change: Callable[..., None]
) -> None:
    marker = f"forge-step-{uuid.uuid4().hex}"
    commit_change(
        example, "services/api/.forge/project.cue",
        'target: "python3 -m unittest discover -s tests", timeout: "2m"',
        f'target: "python3 -c \\"import time; time.sleep(120)\\" {marker}", timeout: "3m"',
    )
    state = Path(forge.env["FORGE_STATE_DIR"])  # type: ignore[attr-defined]
    env = {k: v for k, v in forge.env.items() if k not in ("FORGE_NATS__URL", "FORGE_NATS__PREFIX")}  # type: ignore[attr-defined]
    env.update(FORGE_LEASES__TTL_SECONDS="3", FORGE_LEASES__RENEW_SECONDS="1")
    runner = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", str(example)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    nats_config = str(state / "nats" / "nats-server.conf")
    try:
        wait_until(lambda: bool(processes_mentioning(marker)), 90, "the slow step never started")
        assert processes_mentioning(nats_config), "no private nats-server runs"
    finally:
        runner.kill()  # SIGKILL
        runner.wait()
    wait_until(lambda: not processes_mentioning(marker), 10, "the step's process outlived forge run")
    wait_until(lambda: not processes_mentioning(nats_config), 10, "the private nats-server outlived forge run")

    time.sleep(3.5)  # the lease the killed run held lapses
    listing = forge("runs", "--json", env={"FORGE_NATS__URL": None, "FORGE_NATS__PREFIX": None})
    assert listing.returncode == 0, listing.stderr
    [run] = json.loads(listing.stdout)["runs"]
    assert run["status"] == "failed"
    assert "its driver stopped" in run["error"]
    assert run["driver"].endswith(f"/{runner.pid}/forge-run")
