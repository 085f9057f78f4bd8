"""`forge run` end to end on the example monorepo: discovery and every phase group through the
real API (SQLite), NATS JetStream and in-process workers, read back with `forge runs` and `forge logs`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

Forge = Callable[..., subprocess.CompletedProcess[str]]


def make_api_tests_slow(example: Path, commit_change: Callable[..., None]) -> None:
    """Commit a change that keeps the api's tests running for a minute (a run to interrupt)."""
    commit_change(
        example, "services/api/.forge/project.cue",
        'target: "python3 -m unittest discover -s tests", timeout: "2m"',
        'target: "python3 -c \\"import time; time.sleep(60)\\"", timeout: "2m"',
    )


def run_listing(forge: Forge) -> list[dict[str, object]]:
    result = forge("runs", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["runs"]


def test_the_example_runs_end_to_end_on_a_private_nats_server(forge: Forge, example: Path) -> None:
    """No NATS URL configured: `forge run` starts its own nats-server in the state folder."""
    result = forge("run", str(example), env={"FORGE_NATS__URL": None, "FORGE_NATS__PREFIX": None})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ success  api/test" in result.stdout
    assert "✓ success  acmectl/package" in result.stdout
    assert "api: release 1.2.0 — tag 'api/v1.2.0' releases version 1.2.0" in result.stdout
    assert "artifacts (planned (no publisher contacted; --publish publishes)):" in result.stdout
    assert "success  api/api (container)" in result.stdout
    assert "→ container-registry (docker): planned  registry.acme.test/acme/api:1.2.0@sha256:" in result.stdout
    assert "api release 1  aliases 1, api/v1.2.0, 1.2.0" in result.stdout
    assert "deployed to dev: GitOps commit" in result.stdout
    assert "pointer: environments/dev/acme-api/release.yaml" in result.stdout
    runs = run_listing(forge)
    assert [(r["repository"], r["status"], r["tag"]) for r in runs] == [("local/acme", "success", "api/v1.2.0")]
    logs = forge("logs", str(runs[0]["id"]), "--task", "api/test")
    assert logs.returncode == 0
    assert "== api/test / unit (success)" in logs.stdout
    assert "OK" in logs.stdout  # unittest's own summary, from the step's stored log


def test_a_failing_step_fails_its_group_and_leaves_later_groups_untouched(
    forge: Forge, example: Path, commit_change: Callable[..., None]
) -> None:
    commit_change(
        example, "libs/greeting/.forge/project.cue",
        'target: "python3 build_sdist.py dist"',
        'target: "python3 -c \\"import sys; print(\'sdist exploded\'); sys.exit(3)\\""',
    )
    result = forge("run", str(example))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "task greeting/build failed" in result.stdout
    run = run_listing(forge)[0]
    assert run["status"] == "failed"
    logs = forge("logs", str(run["id"]))
    assert "== greeting/build / sdist (failed)" in logs.stdout
    assert "sdist exploded" in logs.stdout
    # group 3 never started: its steps have no log
    package = forge("logs", str(run["id"]), "--task", "api/package")
    assert "(skipped)" in package.stdout and "(no log: the step did not run)" in package.stdout
    # group 1 ran fully
    assert "== api/test / unit (success)" in logs.stdout


def test_a_failing_step_of_a_phase_that_is_not_required_is_reported_and_the_run_goes_on(
    forge: Forge, example: Path, commit_change: Callable[..., None]
) -> None:
    commit_change(
        example, "docs/.forge/project.cue",
        'target: "python3 check_links.py pages"',
        'target: "python3 -c \\"import sys; print(\'broken link\'); sys.exit(4)\\""',
    )
    result = forge("run", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "docs/validate" in result.stdout
    assert "(phase validate is not required: the run goes on)" in result.stdout
    assert "failed but not required (the run went on): validate" in result.stdout
    assert "✓ success  acmectl/package" in result.stdout  # later groups ran
    run = run_listing(forge)[0]
    assert run["status"] == "success"
    detail = forge("logs", str(run["id"]), "--task", "docs/validate")
    assert "broken link" in detail.stdout


def test_a_commit_runs_once_and_a_second_forge_run_shows_that_run(forge: Forge, example: Path) -> None:
    first = forge("run", str(example))
    assert first.returncode == 0, first.stdout + first.stderr
    again = forge("run", str(example))
    assert again.returncode == first.returncode  # the recorded run's result
    assert "already has run" in again.stdout
    assert len(run_listing(forge)) == 1


def test_not_a_repository_is_a_clear_error(forge: Forge, tmp_path: Path) -> None:
    result = forge("run", str(tmp_path))
    assert result.returncode == 2
    assert "not a git repository" in result.stderr and str(tmp_path) in result.stderr
    assert "Traceback" not in result.stderr


def test_nats_unreachable_names_the_url(forge: Forge, example: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = forge("run", str(example), env={"FORGE_NATS__URL": f"nats://127.0.0.1:{port}"})
    assert result.returncode != 0
    assert f"nats://127.0.0.1:{port}" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_cancelling_through_the_api_stops_the_run(
    forge: Forge, example: Path, commit_change: Callable[..., None], platform_api: Any
) -> None:
    """The API served by `forge api`, `forge run` pointed at it; DELETE /v1/runs/{id} stops the run."""
    make_api_tests_slow(example, commit_change)
    url, headers = platform_api.url, platform_api.headers
    env = {"FORGE_API__URL": url, "FORGE_API__TOKEN": platform_api.token}
    runner = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", str(example)],
        env={**forge.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        run_id = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run_id is None:
            runs = httpx.get(f"{url}/v1/runs", headers=headers).json()["runs"]
            tasks = []
            if runs:
                detail = httpx.get(f"{url}/v1/runs/{runs[0]['id']}", headers=headers).json()
                tasks = [t for p in detail["phases"] for t in p["tasks"] if t["key"] == "api/test"]
            if tasks and tasks[0]["status"] == "running":
                run_id = runs[0]["id"]
            time.sleep(0.2)
        assert run_id is not None, "the slow task never started"
        started = time.monotonic()
        assert httpx.delete(f"{url}/v1/runs/{run_id}", headers=headers).status_code == 204
        out, err = runner.communicate(timeout=60)
        assert time.monotonic() - started < 30, "the run did not stop promptly"
        assert runner.returncode == 130, out + err
        final = httpx.get(f"{url}/v1/runs/{run_id}", headers=headers).json()
        assert final["status"] == "cancelled"
        later = [t for p in final["phases"] if p["group_number"] > 1 for t in p["tasks"]]
        assert later and {t["status"] for t in later} <= {"cancelled", "skipped"}
        assert all(t["started_at"] is None for t in later), "a later group started"
    finally:
        if runner.poll() is None:
            runner.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_cancels_the_run_and_records_it(
    forge: Forge, example: Path, commit_change: Callable[..., None], signum: signal.Signals
) -> None:
    make_api_tests_slow(example, commit_change)
    runner = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", str(example)],
        env=forge.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            logs = list((Path(forge.env["FORGE_STATE_DIR"]) / "storage" / "logs").glob("*/*/*.log"))
            if len(logs) >= 3:  # group 1 is under way
                break
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, out + err
    run = run_listing(forge)[0]
    assert run["status"] == "cancelled"


def test_a_state_directory_that_is_a_file_is_a_clear_error(forge: Forge, example: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    result = forge("run", str(example), env={"FORGE_STATE_DIR": str(blocker / "state")})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"state directory {blocker / 'state'} is not usable" in result.stderr
    assert "FORGE_STATE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_forge_run_on_one_state_directory_says_why_it_cannot(
    forge: Forge, example: Path, commit_change: Callable[..., None]
) -> None:
    make_api_tests_slow(example, commit_change)
    first = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", str(example)],
        env=forge.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        state = Path(forge.env["FORGE_STATE_DIR"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((state / "storage" / "logs").glob("*/*/*.log")):
            time.sleep(0.2)  # the first run is recorded and under way
        second = forge("run", str(example))
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"{state} is in use by another forge process (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert [r["status"] for r in run_listing(forge)] == ["cancelled"], "the refused run left a record"


def _forge_logs_peak_kb(forge: Forge, run_id: str, out: Path) -> int:
    """Run `forge logs` with its output in ``out``; its own peak resident memory in KiB."""
    with out.open("wb") as sink:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "forge"), "logs", run_id, "--task", "api/test"],
            stdout=sink, stderr=subprocess.DEVNULL, env=forge.env,  # type: ignore[attr-defined]
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return usage.ru_maxrss


def test_forge_logs_streams_a_large_log_in_bounded_memory(forge: Forge, example: Path, tmp_path: Path) -> None:
    assert forge("run", str(example)).returncode == 0
    run_id = str(run_listing(forge)[0]["id"])
    small = _forge_logs_peak_kb(forge, run_id, tmp_path / "small.out")
    printed = (tmp_path / "small.out").read_bytes().removeprefix(b"== api/test / unit (success)\n")
    logs = (Path(forge.env["FORGE_STATE_DIR"]) / "storage" / "logs").glob("*/*/*.log")  # type: ignore[attr-defined]
    [log] = [p for p in logs if p.read_bytes() == printed]  # api/test's only step
    block = b"".join(b"%07d " % i + b"x" * 1015 + b"\n" for i in range(1024))  # 1 MiB of lines
    with log.open("wb") as handle:
        for _ in range(200):
            handle.write(block)
        handle.write(b"the end\n")
    large = _forge_logs_peak_kb(forge, run_id, tmp_path / "large.out")
    out = tmp_path / "large.out"
    assert out.stat().st_size == log.stat().st_size + len(b"== api/test / unit (success)\n")
    with out.open("rb") as copy:
        assert copy.readline() == b"== api/test / unit (success)\n"
        assert copy.read(len(block)) == block
        copy.seek(-len(b"the end\n"), os.SEEK_END)
        assert copy.read() == b"the end\n"
    assert (large - small) / 1024 < 30, f"forge logs grew by {(large - small) / 1024:.0f} MiB for a 200 MiB log"
