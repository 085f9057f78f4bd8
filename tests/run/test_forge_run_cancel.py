"""`forge cancel` beside a `forge run` on its private NATS server (no NATS configured): the
cancel reaches the in-process workers, which stop the running step at once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .test_forge_run import Forge, make_api_tests_slow, run_listing


def test_forge_cancel_stops_a_running_step_of_a_forge_run_on_its_private_server(
    forge: Forge, example: Path, commit_change: Callable[..., None]
) -> None:
    make_api_tests_slow(example, commit_change)  # a step that sleeps for a minute
    private = {**forge.env}  # type: ignore[attr-defined]
    private.pop("FORGE_NATS__URL")
    runner = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", str(example)],
        env=private, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        logs = Path(private["FORGE_STATE_DIR"]) / "storage" / "logs"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(list(logs.glob("*/*/*.log"))) < 3:
            time.sleep(0.5)  # group 1, with the slow step, is under way
        assert runner.poll() is None, runner.communicate()
        run_id = str(run_listing(forge)[0]["id"])
        started = time.monotonic()
        cancelled = forge("cancel", run_id, env={"FORGE_NATS__URL": None})
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        out, err = runner.communicate(timeout=90)
        took = time.monotonic() - started
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert took < 30, f"the running step was not stopped: forge run took {took:.0f} s after the cancel"
    assert runner.returncode == 130, out + err
    run = run_listing(forge)[0]
    assert run["status"] == "cancelled"
    # The worker heard the cancel (not only `forge run` seeing its run closed at the next poll).
    journal = (Path(private["FORGE_STATE_DIR"]) / "forge.log").read_text()
    assert f"run {run_id} cancelled; stopping its job" in journal
