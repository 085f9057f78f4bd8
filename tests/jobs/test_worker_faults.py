"""Workers that die, jobs that never finish, shutdown, and the worker's metrics."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder, read_calls

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.deadletter import REASON_HEADER
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.bus.topology import Topology
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.models import Job, JobStatus
from forge_core.settings import Settings
from forge_core.worker.runner import Worker

from .conftest import WorkerProcess, running


def artifact_job(job_id: str, **payload: object) -> Job:
    return Job(id=job_id, type="artifact", run_id="run-1", payload={"artifact_id": job_id, **payload})


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_once(
    worker_process: Callable[..., WorkerProcess], settings: Settings, storage: FsspecStore, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()

    async def scenario() -> None:
        first = worker_process()
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            job = artifact_job("j-killed", do="sleep", seconds=1.5, marker=str(marker))
            reply = asyncio.create_task(dispatcher.dispatch(job, timeout=30))
            await asyncio.to_thread(wait_for, lambda: "start" in marker.read_text())
            first.kill()  # kill -9 in the middle of the job
            await asyncio.to_thread(worker_process)
            result = await reply
        finally:
            await client.close()
        assert result.status is JobStatus.SUCCESS
        lines = marker.read_text().splitlines()
        assert lines.count("start j-killed") == 2  # redelivered after the ack wait
        assert lines.count("done j-killed") == 1  # and finished once

    asyncio.run(scenario())


def test_a_job_that_always_crashes_is_dead_lettered_after_three_deliveries(
    worker_process: Callable[..., WorkerProcess], settings: Settings, storage: FsspecStore, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    recorded = tmp_path / "recorded.jsonl"

    async def scenario() -> None:
        client = await connect(settings.nats)
        workers: list[WorkerProcess] = []
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            job = artifact_job("j-crash", do="crash", marker=str(marker), task={"id": "task-c"})
            reply = asyncio.create_task(dispatcher.dispatch(job, timeout=60))
            while not reply.done():  # like a StatefulSet: a dead worker is started again
                if not workers or not workers[-1].alive():
                    workers.append(await asyncio.to_thread(worker_process))
                await asyncio.sleep(0.1)
            result = await reply
            topology = Topology.from_settings(settings.nats)
            js = client.jetstream()
            dead = await js.get_msg(topology.dead_letter_stream, seq=1)
            assert dead.headers is not None and "gave up after 3 deliveries" in dead.headers[REASON_HEADER]
            assert (await js.stream_info(topology.stream("artifact"))).state.messages == 0
        finally:
            await client.close()
            for worker in workers:
                worker.kill()
        assert result.status is JobStatus.FAILED and "gave up after 3 deliveries" in (result.error or "")
        assert marker.read_text().splitlines().count("start j-crash") == 3
        calls = read_calls(RecordingRecorder(recorded))
        assert [c[:3] for c in calls] == [["task", "task-c", "failed"]]
        assert "gave up after 3 deliveries" in calls[0][3]

    asyncio.run(scenario())


def test_shutdown_finishes_a_short_job_and_releases_a_long_one(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    settings.worker.shutdown_grace_seconds = 0.5

    async def scenario() -> None:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            async with running(make_worker(concurrency=2)):
                short = asyncio.create_task(dispatcher.dispatch(artifact_job("j-short", do="sleep", seconds=0.2), 20))
                long = asyncio.create_task(
                    dispatcher.dispatch(artifact_job("j-long", do="sleep", seconds=3, marker=str(marker)), 20)
                )
                await asyncio.to_thread(wait_for, lambda: "start j-long" in marker.read_text())
            started = time.monotonic()
            async with running(make_worker()):  # the released job is redelivered at once
                assert (await short).status is JobStatus.SUCCESS
                assert (await long).status is JobStatus.SUCCESS
            assert time.monotonic() - started < 10
        finally:
            await client.close()
        lines = marker.read_text().splitlines()
        assert lines.count("start j-long") == 2
        assert lines.count("done j-long") == 1  # the released run was stopped, not finished twice

    asyncio.run(scenario())


def test_metrics_show_the_consumer_lag(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore
) -> None:
    settings.worker.metrics_port = 0

    async def scenario() -> None:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            lagging = make_worker(concurrency=1)
            lagging.lag_interval = 0.1
            async with running(lagging) as worker:
                jobs = [
                    asyncio.create_task(dispatcher.dispatch(artifact_job(f"j-lag{i}", do="sleep", seconds=0.6), 30))
                    for i in range(4)
                ]
                await asyncio.sleep(0.3)
                deadline = time.monotonic() + 10
                while worker.metrics.pending._value.get() < 2:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
                text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
                assert 'forge_worker_consumer_pending{type="artifact"}' in text
                assert 'forge_worker_jobs_in_flight{type="artifact"} 1.0' in text
                results = await asyncio.gather(*jobs)
                assert all(r.status is JobStatus.SUCCESS for r in results)
                # the reply goes out before the worker counts the job: the last count may trail it
                succeeded = worker.metrics.jobs.labels(type="artifact", status="success")
                deadline = time.monotonic() + 10
                while succeeded._value.get() < 4 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert succeeded._value.get() == 4
        finally:
            await client.close()

    asyncio.run(scenario())


def test_idle_workers_stop_at_once_and_together_not_when_their_pulls_expire(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, monkeypatch: Any,
) -> None:
    """A stop cancels each lane's waiting pull (a pull waits 30 s here): five idle workers with
    four lanes each stop in far less than one pull's wait, and a job sent after they stopped is
    taken at once by the next worker (nothing was left held by a cancelled pull)."""
    from forge_core.worker import runner
    from forge_core.worker.embedded import running_workers

    monkeypatch.setattr(runner, "FETCH_WAIT", 30.0)

    async def scenario() -> None:
        workers = [make_worker(concurrency=4) for _ in range(5)]
        async with running_workers(workers):
            await asyncio.sleep(0.5)  # every lane is waiting on its pull
            stopping = time.monotonic()
        stopped = time.monotonic() - stopping
        assert stopped < 10, f"the workers took {stopped:.1f} s to stop: they waited for their pulls"
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            async with running(make_worker()):
                result = await dispatcher.dispatch(artifact_job("j-after"), 20)
            assert result.status is JobStatus.SUCCESS
        finally:
            await client.close()

    asyncio.run(scenario())


def test_a_worker_that_cannot_start_fails_the_start_of_all_and_the_others_stop(
    make_worker: Callable[..., Worker],
) -> None:
    from forge_core.domain.errors import MessagingError
    from forge_core.worker.embedded import running_workers

    good, bad = make_worker(), make_worker(url="nats://127.0.0.1:1")  # nothing listens there

    async def scenario() -> None:
        with pytest.raises(MessagingError, match=r"127\.0\.0\.1:1"):
            async with running_workers([good, bad]):
                raise AssertionError("the block ran without one of its workers")
        assert good._client is not None and good._client.is_closed  # stopped, not left pulling

    asyncio.run(scenario())
