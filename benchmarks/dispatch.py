#!/usr/bin/env python3
"""Round trip of a no-op job, dispatcher → JetStream → worker → handler → reply, beside the bare
nats-py JetStream work-queue request-reply loop, in one run.

    uv run python benchmarks/dispatch.py [--jobs N] [--url nats://127.0.0.1:4222]

Both sides use the same server, a work-queue stream, a durable pull consumer with explicit acks
and a reply inbox; the baseline does nothing else, forge adds its envelopes, the stored result
(duplicate detection), the handler plugin in a thread and in-progress acks. Prints p50 and p99 of
one job at a time and the throughput with 4 in flight; target (issue 12): forge's p50 within 2x the
baseline. ``--repeat N`` runs the whole comparison N times in a row (the target holds in each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import nats
from log_recorder import LogRecorder  # beside this script
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.models import Job, JobResult, JobStatus
from forge_core.plugin.host import PluginInfo, load_plugins
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import JobHandlerRegistrar
from forge_core.settings import PluginSettings, Settings
from forge_core.settings.nats import NatsSettings
from forge_core.settings.storage import StorageSettings
from forge_core.settings.worker import WorkerSettings
from forge_core.worker.runner import Worker

RoundTrip = Callable[[int], Awaitable[None]]


class NoOp:
    def handle(self, job: Job, ctx: object) -> JobResult:
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS)


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add("artifact", NoOp)


async def measure(round_trip: RoundTrip, jobs: int) -> dict[str, float]:
    for i in range(20):  # warm up
        await round_trip(-i - 1)
    latencies = []
    for i in range(jobs):
        started = time.perf_counter()
        await round_trip(i)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    counter = iter(range(jobs, 10 * jobs))

    async def lane() -> None:
        for _ in range(jobs // 4):
            await round_trip(next(counter))

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(4)))
    elapsed = time.perf_counter() - started
    return {
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "serial": jobs / sum(latencies),
        "parallel": (jobs // 4) * 4 / elapsed,
    }


async def baseline(url: str, prefix: str, jobs: int) -> dict[str, float]:
    """The bare loop: publish with the inbox in a header, pull, reply, ack."""
    client = await nats.connect(url)
    js = client.jetstream()
    stream, subject = f"{prefix}-bare", f"{prefix}.bare"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"], retention=RetentionPolicy.WORK_QUEUE,
                                     storage=StorageType.FILE, max_msgs=1000, max_age=3600))
    await js.add_consumer(stream, ConsumerConfig(durable_name="bare", ack_policy=AckPolicy.EXPLICIT, max_deliver=3,
                                                 ack_wait=60))
    pull = await js.pull_subscribe_bind(durable="bare", stream=stream)
    stop = asyncio.Event()

    async def respond(message: nats.aio.msg.Msg) -> None:
        assert message.headers is not None
        await client.publish(message.headers["Reply-Inbox"], b'{"status":"success"}')
        await message.ack()

    replies: set[asyncio.Task[None]] = set()

    async def responder() -> None:
        while not stop.is_set():
            with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
                for message in await pull.fetch(4, timeout=0.5):
                    reply = asyncio.create_task(respond(message))
                    replies.add(reply)
                    reply.add_done_callback(replies.discard)

    async def round_trip(i: int) -> None:
        inbox = client.new_inbox()
        subscription = await client.subscribe(inbox, max_msgs=1)
        await js.publish(f"{subject}.{i}", b'{"job":"noop"}', stream=stream, headers={"Reply-Inbox": inbox})
        await subscription.next_msg(timeout=10)
        await subscription.unsubscribe()

    task = asyncio.create_task(responder())
    try:
        return await measure(round_trip, jobs)
    finally:
        stop.set()
        await task
        await js.delete_stream(stream)
        await client.close()


async def forge(url: str, prefix: str, jobs: int, state: Path) -> dict[str, float]:
    settings = Settings(
        nats=NatsSettings(url=url, prefix=prefix),
        storage=StorageSettings(url=str(state / "storage")),
        worker=WorkerSettings(cache_dir=state / "cache", concurrency=4),
    )
    host = load_plugins(PluginSettings(autoload=False))
    host.withdraw("core.artifact")  # the no-op handler stands in for the artifact job
    plugin = SimpleNamespace(forge_register_job_handlers=forge_register_job_handlers)
    host.admit(plugin, PluginInfo("bench", None, None))
    storage = FsspecStore.from_settings(settings.storage)
    worker = Worker(settings, host, "artifact", LogRecorder(), storage)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await worker.ready.wait()
    client = await connect(settings.nats)
    dispatcher = NatsDispatcher(client, settings.nats, storage)

    async def round_trip(i: int) -> None:
        job = Job(id=f"noop-{i}", type="artifact", run_id="bench", payload={"artifact_id": f"a{i}"})
        result = await dispatcher.dispatch(job, timeout=10)
        assert result.status is JobStatus.SUCCESS

    try:
        return await measure(round_trip, jobs)
    finally:
        stop.set()
        await running
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"{prefix}-"):
                await js.delete_stream(info.config.name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    for _ in range(args.repeat):
        compare(args.url, args.jobs)


def compare(url: str, jobs: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as state:
        bare = asyncio.run(baseline(url, prefix, jobs))
        ours = asyncio.run(forge(url, prefix, jobs, Path(state)))
    print(f"no-op job round trip, {jobs} jobs each, NATS at {url}")
    print(f"{'':44} {'p50 ms':>8} {'p99 ms':>8} {'jobs/s (1)':>11} {'jobs/s (4)':>11}")
    rows = (("bare JetStream request-reply (baseline)", bare), ("forge dispatcher -> worker -> handler", ours))
    for name, row in rows:
        print(f"{name:44} {row['p50']:8.2f} {row['p99']:8.2f} {row['serial']:11.0f} {row['parallel']:11.0f}")
    ratio = ours["p50"] / bare["p50"]
    print(f"p50 ratio forge/baseline: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
