"""A step runs at most once at a time: a job released at shutdown runs again cleanly, in its own
checkout, after the earlier delivery's step is dead; a cancelled run's running step stops and is
recorded cancelled; a redelivery waits for an earlier delivery still holding the job."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder

from forge_core.adapters.bus.cancel import announce_cancel
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.bus.topology import Topology
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ForgeError
from forge_core.domain.models import JobStatus
from forge_core.settings import Settings
from forge_core.worker.claims import JobClaims, StillRunning
from forge_core.worker.runner import Worker

from .conftest import WorkerProcess, running
from .test_ci import ci_job

FINAL = {"success", "failed", "cancelled", "skipped"}


class FinalIsFinal(ForgeError):
    code = "resource_conflict"


def refuse_changes_of_final_statuses(recorder: RecordingRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like the API: a step that reached a final status keeps it (a conflict names the status)."""
    record, status_of = recorder.set_step_status, {}

    async def step_status(step_id: str, status: str, **extra: Any) -> None:
        now = status_of.get(step_id)
        if now in FINAL and now != status:
            raise FinalIsFinal(f"step {step_id} is already {now}", details={"id": step_id, "status": now})
        status_of[step_id] = status
        await record(step_id, status, **extra)

    monkeypatch.setattr(recorder, "set_step_status", step_status)


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_a_job_released_at_shutdown_runs_again_cleanly_in_its_own_checkout_after_the_first_step_died(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, recorder: RecordingRecorder,
    monorepo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    refuse_changes_of_final_statuses(recorder, monkeypatch)
    settings.worker.shutdown_grace_seconds = 0.2
    settings.nats.ack_wait.ci = 40  # released at shutdown: redelivered at once, not after this
    repo, commit = monorepo
    first, second = tmp_path / "first", tmp_path / "second"
    # The first delivery notes its folder and shell, then works long; the second notes its folder
    # and whether the first one's shell is still alive.
    command = (
        f"if [ -e {first} ]; then pwd > {second}; "
        f"kill -0 $(sed -n 2p {first}) 2>/dev/null && echo OVERLAP >> {second}; "
        f"echo second delivery; else (pwd; echo $$) > {first}; sleep 60; fi"
    )
    job = ci_job(repo, commit, [("work", "exec", command), ("after", "exec", "echo after")])

    async def scenario() -> Any:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            async with running(make_worker("ci")):
                reply = asyncio.create_task(dispatcher.dispatch(job, timeout=60))
                await until(lambda: first.exists() and len(first.read_text().split()) == 2)
            # the first worker stopped past its grace: the job went back to the queue
            async with running(make_worker("ci")):
                began = time.monotonic()
                result = await reply
                assert time.monotonic() - began < 25  # handed back (nak), not left to its ack wait
                return result
        finally:
            await client.close()

    result = asyncio.run(scenario())
    assert result.status is JobStatus.SUCCESS, result.error
    assert "OVERLAP" not in second.read_text()  # the first delivery's step was dead before the second began
    assert first.read_text().split()[0] != second.read_text().split()[0]  # a checkout of its own
    steps = [c for c in recorder.calls if c[0] == "step" and c[1] == "t1-s0"]
    assert [c[2] for c in steps] == ["running", "running", "success"]  # never recorded cancelled
    assert recorder.calls[-1] == ("task", "t1", "success", None)


def test_a_cancelled_run_stops_its_running_step_over_the_bus_and_records_it_cancelled(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, recorder: RecordingRecorder,
    monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    started = tmp_path / "started"
    job = ci_job(repo, commit, [("long", "exec", f"touch {started}; sleep 60"), ("next", "exec", "echo next")])

    async def scenario() -> Any:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            async with running(make_worker("ci")):
                reply = asyncio.create_task(dispatcher.dispatch(job, timeout=20))
                await until(started.exists)
                began = time.monotonic()
                await announce_cancel(client, Topology.from_settings(settings.nats), job.run_id)
                result = await reply
                return result, time.monotonic() - began
        finally:
            await client.close()

    result, took = asyncio.run(scenario())
    assert took < 10  # not the 60 s of the step
    assert result.status is JobStatus.FAILED
    assert result.error == "step 'long' cancelled: the run was cancelled"
    assert [s["status"] for s in result.output["steps"]] == ["cancelled"]
    assert ("step", "t1-s0", "cancelled", -9, "logs/run-ci/t1/t1-s0.log") in [
        (c[0], c[1], c[2], c[3], c[4]) for c in recorder.calls if c[0] == "step"
    ]
    assert ("step", "t1-s1", "cancelled", None, None) in recorder.calls  # the rest is cancelled, not skipped
    assert recorder.calls[-1] == ("task", "t1", "cancelled", "step 'long' cancelled: the run was cancelled")


def test_a_redelivery_waits_for_the_earlier_delivery_holding_the_job(tmp_path: Path) -> None:
    claims = JobClaims(tmp_path / "jobs", wait_seconds=10)
    order: list[str] = []
    held = threading.Event()

    def earlier() -> None:
        with claims.holding("job-1", keep_alive=lambda: None, stopped=lambda: False):
            held.set()
            time.sleep(0.5)
            order.append("earlier ends")

    thread = threading.Thread(target=earlier)
    thread.start()
    held.wait(5)
    beats: list[float] = []
    with claims.holding("job-1", keep_alive=lambda: beats.append(time.monotonic()), stopped=lambda: False):
        order.append("later begins")
    thread.join()
    assert order == ["earlier ends", "later begins"]


def test_a_redelivery_gives_up_naming_the_holder_when_the_earlier_one_never_ends(tmp_path: Path) -> None:
    claims = JobClaims(tmp_path / "jobs", wait_seconds=0.3)
    with claims.holding("job-1", keep_alive=lambda: None, stopped=lambda: False):
        other = JobClaims(tmp_path / "jobs", wait_seconds=0.3)
        expected = r"job job-1 is still running in an earlier delivery \(pid \d+ on "
        with (
            pytest.raises(StillRunning, match=expected),
            other.holding("job-1", keep_alive=lambda: None, stopped=lambda: False),
        ):
            pass  # pragma: no cover - never reached


def _dead_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # not left behind the test
    return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_worker_that_stops_takes_its_steps_processes_with_it(
    worker_process: Callable[..., WorkerProcess], settings: Settings, storage: FsspecStore,
    monorepo: tuple[Path, str], tmp_path: Path, how: str,
) -> None:
    settings.worker.shutdown_grace_seconds = 0.2
    repo, commit = monorepo
    child, daemon = tmp_path / "child.pid", tmp_path / "daemon.pid"
    command = (
        f"sleep 300 & echo $! > {child}; "
        f"setsid sh -c 'echo $$ > {daemon}; exec sleep 300' </dev/null >/dev/null 2>&1 & sleep 300"
    )
    job = ci_job(repo, commit, [("long", "exec", command)])

    async def scenario() -> tuple[int, int]:
        worker = await asyncio.to_thread(worker_process, "ci")
        client = await connect(settings.nats)
        try:
            reply = asyncio.create_task(NatsDispatcher(client, settings.nats, storage).dispatch(job, timeout=60))
            await until(lambda: all(p.exists() and p.read_text().strip() for p in (child, daemon)))
            if how == "SIGKILL":
                worker.kill()
            else:
                assert await asyncio.to_thread(worker.stop) == 0
            reply.cancel()
            return int(child.read_text()), int(daemon.read_text())
        finally:
            await client.close()

    pids = asyncio.run(scenario())
    assert all(_dead_within(pid, 5) for pid in pids)
