"""GET /v1/runs/{run_id}/steps/{step_id}/log: a step's stored log a page of bytes at a time, and
`forge logs` reading it from a remote API (whose storage the CLI cannot see), whole or followed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from forge_core.adapters.auth.keys import platform_key
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings.storage import StorageSettings

from .conftest import Api, LocalIssuer, create_run, make_settings
from .test_runs import plan, status

MiB = 1024 * 1024


@dataclass
class LogApi(Api):
    storage: Path = Path()
    url: str = ""


@pytest.fixture(scope="module")
def log_api(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, oidc_issuer: str, github_issuer: LocalIssuer
) -> Iterator[LogApi]:
    """The API on loopback (uvicorn), with its storage in its own folder."""
    state = tmp_path_factory.mktemp("logs-state")
    storage = state / "storage"
    settings = make_settings(database_url, state, oidc_issuer, github_issuer.url)
    settings = settings.model_copy(update={"storage": StorageSettings(url=str(storage))})
    app = create_app(settings, load_plugins(settings.plugins))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        yield LogApi(client, settings, platform_key(settings), storage=storage, url=url)  # type: ignore[arg-type]
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Step:
    run: dict[str, Any]
    ids: dict[str, str]  # run, phase, task, step
    key: str  # the log's storage key

    @property
    def path(self) -> str:
        return f"/v1/runs/{self.ids['run']}/steps/{self.ids['step']}/log"


def running_step(api: LogApi) -> Step:
    """A run whose first step runs, with its log key recorded (as the ci handler does at start)."""
    run = create_run(api)
    recorded = plan(api, run["id"])
    phase = recorded["phases"][0]
    task = phase["tasks"][0]
    step = task["steps"][0]
    key = f"logs/{run['id']}/{task['id']}/{step['id']}.log"
    assert status(api, "runs", run["id"], status="running") == 200
    assert status(api, "phases", phase["id"], status="running") == 204
    assert status(api, "tasks", task["id"], status="running") == 204
    assert status(api, "steps", step["id"], status="running", logs_s3_key=key) == 204
    return Step(run, {"run": run["id"], "phase": phase["id"], "task": task["id"], "step": step["id"]}, key)


def write_log(api: LogApi, key: str, data: bytes, mode: str = "wb") -> None:
    path = api.storage / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as handle:
        handle.write(data)


def finish(api: LogApi, step: Step) -> None:
    assert status(api, "steps", step.ids["step"], status="success", exit_code=0) == 204


def test_a_log_is_read_in_pages_of_at_most_the_limit(log_api: LogApi) -> None:
    step = running_step(log_api)
    data = b"".join(b"%06d " % i + "é".encode() * 60 + b"\n" for i in range(30000))  # 3.8 MB, UTF-8
    write_log(log_api, step.key, data)
    finish(log_api, step)
    pages, offset = [], 0
    while True:
        response = log_api.get(step.path, "viewer", params={"offset": offset, "limit": MiB})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["x-forge-step-status"] == "success"
        assert int(response.headers["x-forge-log-size"]) == len(data)
        assert len(response.content) <= MiB
        pages.append(response.content)
        offset = int(response.headers["x-forge-log-next-offset"])
        assert offset == sum(map(len, pages))
        if not response.content:
            break
    assert len(pages) == 5  # four pages, then the empty one at the end
    assert b"".join(pages) == data  # byte for byte, a character cut between pages included


def test_a_running_steps_log_grows_between_pages(log_api: LogApi) -> None:
    step = running_step(log_api)
    first = log_api.get(step.path, "viewer")
    assert (first.status_code, first.content, first.headers["x-forge-log-size"]) == (200, b"", "0")
    assert first.headers["x-forge-step-status"] == "running"  # no file yet: an empty log so far
    write_log(log_api, step.key, b"one\n")
    page = log_api.get(step.path, "viewer")
    assert page.content == b"one\n" and page.headers["x-forge-step-status"] == "running"
    write_log(log_api, step.key, b"two\n", "ab")
    finish(log_api, step)
    rest = log_api.get(step.path, "viewer", params={"offset": page.headers["x-forge-log-next-offset"]})
    assert rest.content == b"two\n"
    assert rest.headers["x-forge-step-status"] == "success"
    assert rest.headers["x-forge-log-next-offset"] == rest.headers["x-forge-log-size"] == "8"


def test_a_step_without_a_log_is_named(log_api: LogApi) -> None:
    step = running_step(log_api)
    later = next(s["id"] for s in plan_steps(log_api, step) if s["id"] != step.ids["step"])
    pending = log_api.get(f"/v1/runs/{step.ids['run']}/steps/{later}/log", "viewer")
    assert (pending.status_code, pending.content, pending.headers["x-forge-step-status"]) == (200, b"", "pending")
    assert status(log_api, "steps", later, status="skipped") == 204
    skipped = log_api.get(f"/v1/runs/{step.ids['run']}/steps/{later}/log", "viewer")
    assert (skipped.status_code, skipped.content, skipped.headers["x-forge-step-status"]) == (200, b"", "skipped")
    assert skipped.headers["x-forge-no-log"] == "the step did not run"
    assert "x-forge-no-log" not in pending.headers
    finish(log_api, step)  # its log was never written
    missing = log_api.get(step.path, "viewer")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "the step's log is missing from the storage"


def plan_steps(api: LogApi, step: Step) -> list[dict[str, Any]]:
    run = api.get(f"/v1/runs/{step.ids['run']}").json()
    steps: list[dict[str, Any]] = run["phases"][0]["tasks"][0]["steps"]
    return steps


def test_a_step_of_another_run_is_not_found(log_api: LogApi) -> None:
    one, other = running_step(log_api), running_step(log_api)
    response = log_api.get(f"/v1/runs/{one.ids['run']}/steps/{other.ids['step']}/log", "viewer")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"run {one.ids['run']} has no step {other.ids['step']}"


def test_page_bounds_are_validated(log_api: LogApi) -> None:
    step = running_step(log_api)
    assert log_api.get(step.path, "viewer", params={"limit": 0}).status_code == 400
    assert log_api.get(step.path, "viewer", params={"limit": 8 * MiB + 1}).status_code == 400
    assert log_api.get(step.path, "viewer", params={"offset": -1}).status_code == 400


# --- forge logs against a remote API ------------------------------------------------------------


def forge_env(api: LogApi, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update({
        "FORGE_API__URL": api.url,
        "FORGE_API__TOKEN": api.token("viewer", subject="reader"),
        "FORGE_STATE_DIR": str(tmp_path / "cli-state"),
        "FORGE_STORAGE__URL": str(tmp_path / "cli-storage"),  # not the API's: the log comes through the API
        "COLUMNS": "200",
    })
    return env


def forge_logs(env: dict[str, str], *args: str, out: Path) -> tuple[int, int]:
    """`forge logs ARGS` with its output in ``out``: its exit code and peak resident KiB."""
    with out.open("wb") as sink:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "forge"), "logs", *args], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
        _, wait_status, usage = os.wait4(child.pid, 0)
    return os.waitstatus_to_exitcode(wait_status), usage.ru_maxrss


def test_forge_logs_reads_a_huge_log_from_the_api_in_bounded_memory(log_api: LogApi, tmp_path: Path) -> None:
    step = running_step(log_api)
    write_log(log_api, step.key, b"small\n")
    finish(log_api, step)
    env = forge_env(log_api, tmp_path)
    code, small = forge_logs(env, step.ids["run"], "--task", "test/api", out=tmp_path / "small.out")
    out = (tmp_path / "small.out").read_bytes()
    assert code == 0, out
    assert out.startswith(b"== test/api / lint (success)\nsmall\n"), out
    block = b"".join(b"%07d " % i + b"y" * 1015 + b"\n" for i in range(1024))  # 1 MiB of lines
    with (log_api.storage / step.key).open("wb") as handle:
        for _ in range(150):
            handle.write(block)
        handle.write(b"the end\n")
    code, large = forge_logs(env, step.ids["run"], "--task", "test/api", out=tmp_path / "large.out")
    assert code == 0
    with (tmp_path / "large.out").open("rb") as copy:
        assert copy.readline() == b"== test/api / lint (success)\n"
        for _ in range(150):
            assert copy.read(len(block)) == block
        assert copy.readline() == b"the end\n"
    assert (large - small) / 1024 < 30, f"forge logs grew by {(large - small) / 1024:.0f} MiB for a 150 MiB log"


def test_forge_logs_follow_prints_a_running_steps_lines_until_it_ends(log_api: LogApi, tmp_path: Path) -> None:
    step = running_step(log_api)
    write_log(log_api, step.key, b"started\n")
    env = forge_env(log_api, tmp_path)
    out = tmp_path / "follow.out"
    with out.open("wb") as sink:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "forge"), "logs", step.ids["run"], "--task", "test/api", "--follow"],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while b"started" not in out.read_bytes():
                assert child.poll() is None, out.read_bytes()
                assert time.monotonic() < deadline, "forge logs --follow printed nothing"
                time.sleep(0.05)
            write_log(log_api, step.key, b"halfway\n", "ab")
            while b"halfway" not in out.read_bytes():
                assert child.poll() is None, out.read_bytes()
                assert time.monotonic() < deadline, "forge logs --follow did not print the new line"
                time.sleep(0.05)
            assert child.poll() is None  # still following: the step runs
            write_log(log_api, step.key, b"done\n", "ab")
            later = next(s["id"] for s in plan_steps(log_api, step) if s["id"] != step.ids["step"])
            assert status(log_api, "steps", later, status="skipped") == 204
            finish(log_api, step)
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
    lines = out.read_bytes().decode().splitlines()
    assert lines == [
        "== test/api / lint (running)", "started", "halfway", "done",
        "== test/api / unit (skipped)", "(no log: the step did not run)",
    ]
