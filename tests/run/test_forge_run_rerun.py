"""`forge run --rerun`: a commit's finished run is re-run as its next attempt (only the tasks that
did not succeed; --all every task), keeping the earlier attempt's history."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Forge = Callable[..., subprocess.CompletedProcess[str]]


def test_a_failed_run_is_re_run_and_succeeds_as_its_second_attempt(
    forge: Forge, example: Path, commit_change: Callable[..., None], tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    commit_change(
        example, "libs/greeting/.forge/project.cue",
        'target: "python3 build_sdist.py dist"',
        f'target: "python3 -c \\"import os, sys; sys.exit(0 if os.path.exists(\'{flag}\') else 3)\\" '
        '&& python3 build_sdist.py dist"',
    )
    first = forge("run", str(example))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "task greeting/build failed" in first.stdout

    shown = forge("run", str(example))  # without --rerun: the run's result, and how to re-run it
    assert shown.returncode == 1
    assert "forge run --rerun re-runs its failed tasks" in shown.stdout

    flag.write_text("the flaky dependency is back")
    again = forge("run", str(example), "--rerun")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "re-running the tasks that did not succeed of run" in again.stdout and "(attempt 2)" in again.stdout
    assert "earlier attempts: 1 failed (task greeting/build failed" in again.stdout

    [run] = json.loads(forge("runs", "--json").stdout)["runs"]
    assert (run["status"], run["attempt"]) == ("success", 2)
    logs = forge("logs", str(run["id"]), "--task", "greeting/build")
    assert "(success)" in logs.stdout

    busy = forge("run", str(example), "--all")
    assert busy.returncode == 2 and "--all goes with --rerun" in busy.stderr
