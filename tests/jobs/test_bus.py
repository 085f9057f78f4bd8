"""The job bus against the real NATS server: provisioning, round trips, results, dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, RetentionPolicy, StorageType

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.deadletter import REASON_HEADER
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.bus.provisioning import provision, work_queue_config
from forge_core.adapters.bus.results import job_result_key
from forge_core.adapters.bus.topology import Topology
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ConfigurationError, JobTimeoutError, MessagingError
from forge_core.domain.jobs import JobEnvelope
from forge_core.domain.models import Job, JobStatus
from forge_core.settings import Settings
from forge_core.worker.runner import Worker

from .conftest import running


def artifact_job(job_id: str, **payload: object) -> Job:
    return Job(id=job_id, type="artifact", run_id="run-1", payload={"artifact_id": job_id, **payload})


def test_names_without_a_prefix_are_the_specs() -> None:
    topology = Topology()
    assert topology.streams() == {
        "pipeline-discovery": "pipeline.discovery.>",
        "pipeline-tasks": "pipeline.tasks.>",
        "pipeline-artifacts": "pipeline.artifacts.>",
        "pipeline-releases": "pipeline.releases.>",
    }
    assert topology.subject(Job(id="j", type="discovery", run_id="r1")) == "pipeline.discovery.r1"
    ci = Job(id="j", type="ci", run_id="r1", payload={"task": {"id": "t9"}})
    assert topology.subject(ci) == "pipeline.tasks.r1.t9"
    artifact = Job(id="j", type="artifact", run_id="r1", payload={"artifact_id": "a"})
    assert topology.subject(artifact) == "pipeline.artifacts.r1.a"
    assert topology.subject(Job(id="j", type="release", run_id="r1")) == "pipeline.releases.r1.release"
    assert topology.filter_subject("deployment") == "pipeline.releases.*.deployment"
    assert topology.consumer("ci") == "worker-ci"


def test_ids_that_cannot_be_subject_tokens_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="run_id"):
        Topology().subject(Job(id="j", type="discovery", run_id="a.b"))
    with pytest.raises(ConfigurationError, match="payload"):
        Topology().subject(Job(id="j", type="ci", run_id="r"))
    with pytest.raises(ConfigurationError, match="unknown job type"):
        Topology().stream("build")


def test_provisioning_is_idempotent_and_reconciles_changed_settings(settings: Settings) -> None:
    async def scenario() -> None:
        client = await connect(settings.nats)
        js = client.jetstream()
        topology = Topology.from_settings(settings.nats)
        try:
            for job_type in ("ci", "release", "deployment"):
                await provision(js, topology, settings.nats, job_type)
            await provision(js, topology, settings.nats, "ci")  # again: no error, no change
            stream = await js.stream_info(topology.stream("ci"))
            assert stream.config.retention == RetentionPolicy.WORK_QUEUE
            assert (stream.config.max_age, stream.config.max_msgs) == (3600, 1000)
            assert stream.config.storage == StorageType.FILE and stream.config.num_replicas == 1
            consumer = await js.consumer_info(topology.stream("ci"), topology.consumer("ci"))
            assert consumer.config.ack_policy == AckPolicy.EXPLICIT
            assert (consumer.config.max_deliver, consumer.config.ack_wait) == (3, 5)
            release = await js.consumer_info(topology.stream("release"), topology.consumer("deployment"))
            assert release.config.filter_subject == f"{settings.nats.prefix}.pipeline.releases.*.deployment"

            changed = settings.nats.model_copy(
                update={"max_messages": 500, "ack_wait": settings.nats.ack_wait.model_copy(update={"ci": 9})}
            )
            await provision(js, topology, changed, "ci")
            assert (await js.stream_info(topology.stream("ci"))).config.max_msgs == 500
            consumer = await js.consumer_info(topology.stream("ci"), topology.consumer("ci"))
            assert consumer.config.ack_wait == 9

            name = topology.stream("ci")
            await js.delete_stream(name)
            limits = work_queue_config(name, topology.streams()[name], settings.nats)
            limits.retention = RetentionPolicy.LIMITS
            await js.add_stream(limits)
            with pytest.raises(MessagingError, match="retention"):
                await provision(js, topology, settings.nats, "ci")
        finally:
            await client.close()

    asyncio.run(scenario())


def test_a_job_round_trip_stores_its_result(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore
) -> None:
    async def scenario() -> None:
        async with running(make_worker()):
            client = await connect(settings.nats)
            try:
                job = artifact_job("j-ok", echo="hello")
                result = await NatsDispatcher(client, settings.nats, storage).dispatch(job, timeout=10)
            finally:
                await client.close()
        assert result.status is JobStatus.SUCCESS and result.output["echo"] == "hello"
        assert storage.exists(job_result_key(job))

    asyncio.run(scenario())


def test_a_duplicate_delivery_is_answered_from_the_stored_result(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"

    async def scenario() -> None:
        async with running(make_worker()) as worker:
            client = await connect(settings.nats)
            try:
                dispatcher = NatsDispatcher(client, settings.nats, storage)
                job = artifact_job("j-dup", echo="once", marker=str(marker))
                first = await dispatcher.dispatch(job, timeout=10)
                second = await dispatcher.dispatch(job, timeout=10)
                retry = await dispatcher.dispatch(job.model_copy(update={"attempt": 2}), timeout=10)
            finally:
                await client.close()
            assert worker.metrics.duplicates._value.get() == 1
        assert first == second and first.status is JobStatus.SUCCESS
        assert retry.status is JobStatus.SUCCESS
        assert marker.read_text().count("start j-dup") == 2  # the first delivery and the new attempt

    asyncio.run(scenario())


def test_a_handler_that_raises_fails_the_job_and_its_task(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, recorder: RecordingRecorder
) -> None:
    async def scenario() -> None:
        async with running(make_worker()):
            client = await connect(settings.nats)
            try:
                dispatcher = NatsDispatcher(client, settings.nats, storage)
                job = artifact_job("j-raise", do="raise", message="disk on fire", task={"id": "task-7"})
                result = await asyncio.wait_for(dispatcher.dispatch(job, timeout=10), 15)
                after = await dispatcher.dispatch(artifact_job("j-next"), timeout=10)
            finally:
                await client.close()
        assert result.status is JobStatus.FAILED
        assert result.error == "RuntimeError: disk on fire"
        assert recorder.calls == [("task", "task-7", "failed", "RuntimeError: disk on fire")]
        assert after.status is JobStatus.SUCCESS  # the worker goes on

    asyncio.run(scenario())


def test_results_over_one_megabyte_travel_by_reference(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore
) -> None:
    size = 1_200_000  # over the limit and over NATS's 1 MB payload: inline it could not travel

    async def scenario() -> None:
        async with running(make_worker()):
            client = await connect(settings.nats)
            try:
                received: list[bytes] = []
                job = artifact_job("j-big", do="big", size=size)
                dispatcher = NatsDispatcher(client, settings.nats, storage)
                original = client.subscribe

                async def spy(subject: str, **kwargs: object) -> object:
                    subscription = await original(subject, **kwargs)  # type: ignore[arg-type]
                    next_msg = subscription.next_msg

                    async def capture(timeout: float = 1.0) -> object:
                        message = await next_msg(timeout=timeout)
                        received.append(message.data)
                        return message

                    subscription.next_msg = capture  # type: ignore[method-assign]
                    return subscription

                client.subscribe = spy  # type: ignore[method-assign]
                result = await dispatcher.dispatch(job, timeout=20)
            finally:
                await client.close()
        assert len(result.output["blob"]) == size
        reply = json.loads(received[0])
        assert reply["result"] is None and reply["result_ref"] == job_result_key(job)
        assert len(received[0]) < 1000

    asyncio.run(scenario())


def test_the_dispatcher_times_out_and_withdraws_its_job(settings: Settings, storage: FsspecStore) -> None:
    async def scenario() -> None:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            with pytest.raises(JobTimeoutError, match=r"no reply for artifact job j-late within 0.5 s"):
                await dispatcher.dispatch(artifact_job("j-late"), timeout=0.5)
            info = await client.jetstream().stream_info(dispatcher.topology.stream("artifact"))
            assert info.state.messages == 0  # nobody will run a job its dispatcher gave up on
        finally:
            await client.close()

    asyncio.run(scenario())


def test_nats_unavailable_at_start_names_the_url(settings: Settings, make_worker: Callable[..., Worker]) -> None:
    url = "nats://127.0.0.1:9"  # discard port: nothing listens there

    async def scenario() -> None:
        with pytest.raises(MessagingError, match=r"cannot connect to NATS at nats://127\.0\.0\.1:9"):
            await connect(settings.nats, url)
        worker = make_worker(url=url)
        with pytest.raises(MessagingError, match=r"nats://127\.0\.0\.1:9"):
            await worker.run(asyncio.Event())

    asyncio.run(scenario())


def test_a_malformed_message_is_dead_lettered_and_the_worker_goes_on(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="forge.worker")
    topology = Topology.from_settings(settings.nats)

    async def scenario() -> None:
        async with running(make_worker()) as worker:
            client = await connect(settings.nats)
            try:
                js = client.jetstream()
                await js.publish(f"{settings.nats.prefix}.pipeline.artifacts.run-1.x", b"{not json")
                result = await NatsDispatcher(client, settings.nats, storage).dispatch(artifact_job("j-after"), 10)
                assert result.status is JobStatus.SUCCESS
                for _ in range(50):
                    if (await js.stream_info(topology.dead_letter_stream)).state.messages:
                        break
                    await asyncio.sleep(0.1)
                dead = await js.get_msg(topology.dead_letter_stream, seq=1)
                assert dead.data == b"{not json"
                assert dead.headers is not None and dead.headers[REASON_HEADER].startswith("malformed job message")
                assert (await js.stream_info(topology.stream("artifact"))).state.messages == 0
            finally:
                await client.close()
            assert worker.metrics.dead_letters.labels(type="artifact", reason="malformed")._value.get() == 1

    asyncio.run(scenario())
    assert any("malformed job message" in r.getMessage() for r in caplog.records)


async def _dead_letters(js: JetStreamContext, topology: Topology, count: int) -> list[Any]:
    """The first ``count`` dead letters, waited for (a worker writes them as it goes; on a loaded
    machine running the job can take a while)."""
    deadline = asyncio.get_running_loop().time() + 120
    while (await js.stream_info(topology.dead_letter_stream)).state.messages < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} dead letters after 120 s")
        await asyncio.sleep(0.1)
    return [await js.get_msg(topology.dead_letter_stream, seq=n) for n in range(1, count + 1)]


def test_a_job_whose_reply_to_no_one_listens_on_is_dead_lettered_not_retried(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, tmp_path: Path
) -> None:
    """The dispatcher left (a new inbox nobody subscribes to): the job runs once, its result is
    stored, and the job goes to the dead letters with the reason instead of being redelivered."""
    topology = Topology.from_settings(settings.nats)
    marker = tmp_path / "marker"

    async def scenario() -> None:
        async with running(make_worker()) as worker:
            client = await connect(settings.nats)
            try:
                js = client.jetstream()
                job = artifact_job("j-orphan", marker=str(marker))
                gone = client.new_inbox()
                envelope = JobEnvelope(job=job, reply_to=gone).model_dump_json().encode()
                await js.publish(topology.subject(job), envelope, stream=topology.stream("artifact"))
                (dead,) = await _dead_letters(js, topology, 1)
                assert dead.data == envelope
                assert dead.headers is not None
                reason = dead.headers[REASON_HEADER]
                assert reason.startswith("undeliverable reply: no one listens on reply_to"), reason
                assert gone in reason
                await asyncio.sleep(settings.nats.ack_wait.artifact + 0.5)  # past a redelivery
                assert (await js.stream_info(topology.stream("artifact"))).state.messages == 0
                assert (await js.stream_info(topology.dead_letter_stream)).state.messages == 1
                after = await NatsDispatcher(client, settings.nats, storage).dispatch(job, timeout=10)
            finally:
                await client.close()
            assert worker.metrics.dead_letters.labels(type="artifact", reason="undeliverable_reply")._value.get() == 1
        assert storage.exists(job_result_key(job))
        assert after.status is JobStatus.SUCCESS  # the stored result answers a dispatcher that listens
        assert marker.read_text().count("start j-orphan") == 1  # run once, never again

    asyncio.run(scenario())


@pytest.mark.parametrize("reply_to", ["an inbox with spaces", "_INBOX..x", "_INBOX.*", "_INBOX.>", ""])
def test_a_job_with_a_malformed_reply_to_is_dead_lettered_and_its_task_failed(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, recorder: RecordingRecorder,
    tmp_path: Path, reply_to: str,
) -> None:
    topology = Topology.from_settings(settings.nats)
    marker = tmp_path / "marker"

    async def scenario() -> None:
        async with running(make_worker()):
            client = await connect(settings.nats)
            try:
                js = client.jetstream()
                job = artifact_job("j-badreply", marker=str(marker), task={"id": "task-9"})
                envelope = JobEnvelope(job=job, reply_to=reply_to).model_dump_json().encode()
                await js.publish(topology.subject(job), envelope, stream=topology.stream("artifact"))
                (dead,) = await _dead_letters(js, topology, 1)
                assert dead.data == envelope
                assert dead.headers is not None
                assert dead.headers[REASON_HEADER].startswith("undeliverable reply: reply_to ")
                await asyncio.sleep(settings.nats.ack_wait.artifact + 0.5)  # past a redelivery
                assert (await js.stream_info(topology.stream("artifact"))).state.messages == 0
                assert (await js.stream_info(topology.dead_letter_stream)).state.messages == 1
                ok = await NatsDispatcher(client, settings.nats, storage).dispatch(artifact_job("j-next"), 10)
                assert ok.status is JobStatus.SUCCESS  # the worker goes on
            finally:
                await client.close()
        assert not marker.exists()  # never run: nobody could have been told its result
        ((kind, task, status, error),) = recorder.calls
        assert (kind, task, status) == ("task", "task-9", "failed")
        assert error.startswith("undeliverable reply: reply_to")

    asyncio.run(scenario())
