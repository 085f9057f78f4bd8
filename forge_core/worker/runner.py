"""The worker: pulls jobs of one type, runs the handler plugin for it, records, replies, acks.

For each job: a redelivery of a job that already finished is answered from its stored result
(never run twice); otherwise the handler runs in a thread while in-progress acks keep the job,
its result is stored, sent to the dispatcher's inbox, and only then acked. A handler that raises
fails the job (and its task) with the error. A message that is not a job, and a job that ran out
of deliveries (the server's advisory), go to the dead-letter subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from forge_core.adapters.artifact_tracking import ArtifactTracking
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.deadletter import MaxDeliveries, publish_dead_letter
from forge_core.adapters.bus.provisioning import provision
from forge_core.adapters.bus.replies import reply_subject_problem, send_reply
from forge_core.adapters.bus.results import store_result, stored_reply
from forge_core.adapters.bus.topology import Topology, check_job_type
from forge_core.adapters.git import GitCache
from forge_core.adapters.oci.release_image import release_store
from forge_core.domain.errors import ForgeError, MessagingError, PluginError
from forge_core.domain.jobs import JobEnvelope
from forge_core.domain.models import Job, JobResult, JobStatus
from forge_core.domain.secrets import mask_secrets
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost
from forge_core.ports.contexts import JobContext
from forge_core.ports.platform import DeploymentReporter, ReleaseApi, RunRecorder
from forge_core.ports.storage import ObjectStore
from forge_core.services.recording import BlockingDeployments, BlockingRecorder, BlockingReleases, record_job_failure
from forge_core.services.secrets import ProviderSecrets
from forge_core.settings import Settings
from forge_core.settings.git import GitSettings
from forge_core.worker.claims import JobClaims
from forge_core.worker.metrics import WorkerMetrics
from forge_core.worker.threads import HandlerThreads

log = logging.getLogger("forge.worker")

FETCH_WAIT = 1.0
"""Seconds one pull waits for jobs (a stop request cancels the waiting pull at once)."""

LAG_INTERVAL = 2.0
"""Seconds between readings of the consumer's lag."""


@dataclass(frozen=True)
class Executed:
    """What a handler thread hands back: the reply to send; the status when the handler ran
    (None: answered from the stored result); the error when the handler raised."""

    reply: bytes
    status: JobStatus | None = None
    raised: str | None = None


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"


class Worker:
    """One worker process's loop for one job type; ``run(stop)`` returns after a clean shutdown."""

    def __init__(
        self,
        settings: Settings,
        host: PluginHost,
        job_type: str,
        recorder: RunRecorder,
        storage: ObjectStore,
        *,
        concurrency: int | None = None,
        url: str | None = None,
    ) -> None:
        self.job_type = check_job_type(job_type)
        # Created once, before connecting: a missing handler plugin is a start-up error.
        self.handler = host.create(Family.JOB_HANDLER, job_type)
        self.host, self.settings, self.recorder, self.storage = host, settings, recorder, storage
        self.nats = settings.nats
        self._url_override = url  # None: the configured one (errors then name FORGE_NATS__URL)
        self.url = url or settings.nats.url
        self.concurrency = concurrency or settings.worker.concurrency
        self.topology = Topology.from_settings(settings.nats)
        self.cache_dir = Path(settings.worker.cache_dir) / job_type
        self.secrets = {k: v.get_secret_value() for k, v in settings.worker.secrets.items()}
        # What handlers get instead of the settings: one resolver, each provider with its own section.
        self.resolver = ProviderSecrets(host.registry, settings.secrets)
        self.git = GitCache(GitSettings(cache_dir=self.cache_dir / "git", lock_timeout=settings.git.lock_timeout))
        # Only the artifact handler writes tracking images; the store and key open on first use.
        self.tracker = ArtifactTracking(settings) if job_type == "artifact" else None
        # Only the release handler writes Release images (to the release store) and creates releases.
        self.release_store = release_store(settings.release, settings.oci) if job_type == "release" else None
        self.metrics = WorkerMetrics(job_type)
        self.metrics_port: int | None = None
        self.ack_wait = float(getattr(settings.nats.ack_wait, job_type))
        self.active: dict[asyncio.Task[None], Msg] = {}
        self._stops: dict[asyncio.Task[Any], threading.Event] = {}  # what tells a job's handler to stop
        self._cancels: dict[asyncio.Task[Any], tuple[str, threading.Event]] = {}  # run id, cancel event
        self._handlers: dict[asyncio.Task[Any], asyncio.Future[Executed]] = {}  # a job's handler thread
        self.claims = JobClaims(self.cache_dir / "jobs", settings.worker.previous_delivery_wait_seconds)
        self.ready = asyncio.Event()
        self.lag_interval = LAG_INTERVAL
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self.threads = HandlerThreads(0)

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._client = client = await connect(self.nats, self._url_override, name=f"forge-worker-{self.job_type}")
        self.threads = HandlerThreads(self.concurrency, name=f"forge-{self.job_type}")
        watcher: asyncio.Task[None] | None = None
        try:
            self._js = js = client.jetstream()
            await provision(js, self.topology, self.nats, self.job_type)
            stream, consumer = self.topology.stream(self.job_type), self.topology.consumer(self.job_type)
            # One pull subscription per slot: each lane long-polls for one job at a time, which
            # keeps a job's pickup latency at one server round trip.
            lanes = [await js.pull_subscribe_bind(durable=consumer, stream=stream) for _ in range(self.concurrency)]
            # A queue group: of all workers of this type, one handles each advisory.
            await client.subscribe(
                self.topology.max_deliveries_advisory(self.job_type), queue=consumer, cb=self._on_max_deliveries
            )
            # Every worker (no queue group): whichever runs a job of the cancelled run stops it.
            await client.subscribe(self.topology.cancel_subject("*"), cb=self._on_cancel)
            port, address = self.settings.worker.metrics_port, self.settings.worker.metrics_host
            if port is not None:
                self.metrics_port = self.metrics.serve(address, port)
            watcher = asyncio.create_task(self._watch_lag(js, stream, consumer))
            log.info(
                "worker %s: pulling from %s/%s (concurrency %d)", self.job_type, stream, consumer, self.concurrency
            )
            self.ready.set()
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.gather(*(self._lane(pull, stopping) for pull in lanes))
            finally:
                stopping.cancel()
            await self._shut_down()
        finally:
            if watcher is not None:
                watcher.cancel()
            self.threads.close()
            self.metrics.close()
            with contextlib.suppress(Exception):
                await client.close()

    async def _lane(self, pull: Any, stopping: asyncio.Task[Any]) -> None:
        """Pull and process one job at a time until asked to stop (a running job is left to
        the shutdown, which gives it the grace period)."""
        while not stopping.done():
            fetch = asyncio.ensure_future(pull.fetch(1, timeout=FETCH_WAIT))
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not fetch.done():  # asked to stop while waiting for a job: now, not when the pull expires
                await _abandon(pull, fetch)
                return
            try:
                messages = fetch.result()
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:
                if self._client is not None and self._client.is_closed:
                    raise MessagingError(
                        f"lost the connection to NATS at {self.url}: {describe(exc)}", where=self.url
                    ) from exc
                log.warning("worker %s: pull failed (%s); retrying", self.job_type, describe(exc))
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self.active[task] = message
                task.add_done_callback(lambda done: self.active.pop(done, None))
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)

    async def _shut_down(self) -> None:
        """Stop pulling (done), give running jobs the grace period, then release the rest."""
        if not self.active:
            return
        grace = self.settings.worker.shutdown_grace_seconds
        log.info("worker %s: stopping, waiting up to %gs for %d job(s)", self.job_type, grace, len(self.active))
        _done, unfinished = await asyncio.wait(set(self.active), timeout=grace)
        messages = {task: self.active.get(task) for task in unfinished}  # a stopped job leaves `active`
        for task in unfinished:
            stop = self._stops.get(task)
            if stop is not None:
                stop.set()  # the handler's steps are killed: the job must not run twice at once
        # Released only once their handlers have stopped (their steps killed), so a redelivery
        # never starts beside them; a handler that does not stop keeps its job's lock instead.
        handlers = [self._handlers[t] for t in unfinished if t in self._handlers]
        if handlers:
            await asyncio.wait(handlers, timeout=self.settings.worker.stop_wait_seconds)
        for task in unfinished:
            message = messages[task]
            if message is not None:
                with contextlib.suppress(Exception):
                    await message.nak()  # redelivered at once to another worker
            task.cancel()
        if unfinished:
            log.warning("worker %s: released %d unfinished job(s) for redelivery", self.job_type, len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _watch_lag(self, js: JetStreamContext, stream: str, consumer: str) -> None:
        while True:
            with contextlib.suppress(Exception):
                info = await js.consumer_info(stream, consumer)
                self.metrics.pending.set(info.num_pending or 0)
                self.metrics.ack_pending.set(info.num_ack_pending or 0)
            await asyncio.sleep(self.lag_interval)

    # --- one job -------------------------------------------------------------------------------

    async def _process(self, message: Msg) -> None:
        self.metrics.in_flight.inc()
        try:
            envelope = await self._read(message)
            if envelope is not None:
                await self._handle(envelope, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not acked: the job is redelivered after its ack wait (storage or the bus failed us).
            log.exception("worker %s: job message %s could not be processed", self.job_type, message.subject)
        finally:
            self.metrics.in_flight.dec()

    async def _read(self, message: Msg) -> JobEnvelope | None:
        """The job envelope, or None after dead-lettering a message that is not one of ours."""
        try:
            envelope = JobEnvelope.model_validate_json(message.data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            reason = f"malformed job message: {where}: {first['msg']}"
        else:
            if envelope.job.type != self.job_type:
                reason = f"a {envelope.job.type!r} job on the {self.job_type!r} consumer"
            elif envelope.reply_to is not None and (problem := reply_subject_problem(envelope.reply_to)):
                # Its result could never reach anyone: refused before it runs, and its task fails.
                reason = f"undeliverable reply: {problem}"
                await self._dead_letter(message.data, reason, message.subject, "undeliverable_reply")
                log.error("worker %s: job %s dead-lettered: %s", self.job_type, envelope.job.id, reason)
                await self._record_failure(envelope.job, reason)
                await message.ack()
                return None
            else:
                return envelope
        log.error(
            "worker %s: %s (subject %s); moved to the dead-letter subject", self.job_type, reason, message.subject
        )
        await self._dead_letter(message.data, reason, f"{message.subject}", "malformed")
        await message.ack()
        return None

    async def _handle(self, envelope: JobEnvelope, message: Msg) -> None:
        job = envelope.job
        heartbeat = asyncio.create_task(self._keep_alive(message))
        started = time.monotonic()
        handler = self.threads.submit(self._execute, job, self._context(job, message))
        current = asyncio.current_task()
        if current is not None:
            self._handlers[current] = handler
        try:
            done = await asyncio.shield(handler)  # a cancelled job leaves its thread to finish
        finally:
            heartbeat.cancel()
            if current is not None:
                self._handlers.pop(current, None)
        if done.status is None:
            log.info("worker %s: job %s already finished; answering from its stored result", self.job_type, job.id)
            self.metrics.duplicates.inc()
        else:
            self.metrics.duration.observe(time.monotonic() - started)
        if done.raised is not None:
            log.warning("worker %s: job %s failed: %s", self.job_type, job.id, done.raised)
            await self._record_failure(job, done.raised)
        await self._reply(envelope, done.reply, message.data, message.subject)
        await message.ack()
        if done.status is not None:
            self.metrics.jobs.labels(type=self.job_type, status=done.status.value).inc()

    def _execute(self, job: Job, ctx: JobContext) -> Executed:
        """On a handler thread: the stored reply of a job that already finished, or run the
        handler and store its result (one hop off the loop per job)."""
        limit = self.nats.large_result_bytes
        stored = stored_reply(self.storage, job, limit)
        if stored is not None:
            return Executed(stored)
        # An earlier delivery still stopping (another worker's, on this machine) is waited for.
        with self.claims.holding(job.id, keep_alive=ctx.heartbeat, stopped=ctx.stop.is_set):
            stored = stored_reply(self.storage, job, limit)  # it may have finished meanwhile
            if stored is not None:
                return Executed(stored)
            return self._run_handler(job, ctx, limit)

    def _run_handler(self, job: Job, ctx: JobContext, limit: int) -> Executed:
        raised: str | None = None
        try:
            result = self.handler.handle(job, ctx)
            if not isinstance(result, JobResult):
                raise PluginError(
                    f"job handler {self.job_type!r} returned {type(result).__name__}, not a JobResult",
                    where=self.host.get(Family.JOB_HANDLER, self.job_type).owner.plugin,
                )
            if result.job_id != job.id:
                result = result.model_copy(update={"job_id": job.id})
        except Exception as exc:
            raised = mask_secrets(describe(exc), self.secrets.values())
            result = JobResult(job_id=job.id, status=JobStatus.FAILED, error=raised)
        if ctx.stop.is_set() and not ctx.cancel.is_set():
            raise asyncio.CancelledError  # withdrawn and released: the redelivery's result is the job's
        return Executed(store_result(self.storage, job, result, limit), result.status, raised)

    def _context(self, job: Job, message: Msg) -> JobContext:
        loop = asyncio.get_running_loop()

        def heartbeat() -> None:
            ping = message.in_progress()
            try:
                asyncio.run_coroutine_threadsafe(ping, loop)
            except RuntimeError:  # the worker stopped and released the job: nothing to extend
                ping.close()

        def job_log(line: str) -> None:
            log.info("job %s: %s", job.id, mask_secrets(line, self.secrets.values()))

        stop, cancel = threading.Event(), threading.Event()
        current = asyncio.current_task()
        if current is not None:
            self._stops[current] = stop
            self._cancels[current] = (job.run_id, cancel)
            current.add_done_callback(lambda done: (self._stops.pop(done, None), self._cancels.pop(done, None)))
        return JobContext(
            cache_dir=self.cache_dir,
            registry=self.host.registry,
            log=job_log,
            heartbeat=heartbeat,
            stop=stop,
            cancel=cancel,
            recorder=BlockingRecorder(self.recorder, loop),
            storage=self.storage,
            git=self.git,
            secrets=self.resolver,
            step_secrets=dict(self.secrets),
            cue=self.settings.cue,
            deployments=(BlockingDeployments(self.recorder, loop)
                         if isinstance(self.recorder, DeploymentReporter) else None),
            tracker=self.tracker,
            oci=self.release_store,
            releases=(BlockingReleases(self.recorder, loop)
                      if self.release_store is not None and isinstance(self.recorder, ReleaseApi) else None),
        )

    async def _keep_alive(self, message: Msg) -> None:
        """In-progress acks while the handler runs, so a long job is not redelivered."""
        interval = max(0.2, self.ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):  # a blip: the next one may get through
                await message.in_progress()

    async def _reply(self, envelope: JobEnvelope, data: bytes, job_message: bytes, source: str) -> None:
        """Send the reply; one that cannot arrive (a malformed ``reply_to``, or no one listening)
        dead-letters the job message with the reason. The job's result stays stored: a
        redelivery or a new dispatch of the same attempt is answered from it."""
        if envelope.reply_to is None or self._client is None:
            return
        problem = await send_reply(self._client, envelope.reply_to, data)
        if problem is None:
            return
        reason = f"undeliverable reply: {problem}"
        log.warning("worker %s: job %s dead-lettered: %s", self.job_type, envelope.job.id, reason)
        await self._dead_letter(job_message, reason, source, "undeliverable_reply")

    async def _record_failure(self, job: Job, error: str) -> None:
        try:
            await record_job_failure(self.recorder, job, error)
        except Exception as exc:
            log.error("worker %s: cannot record the failure of job %s: %s", self.job_type, job.id, describe(exc))

    # --- cancellation ------------------------------------------------------------------------

    async def _on_cancel(self, message: Msg) -> None:
        """A run was cancelled: its jobs running here stop, their steps recorded cancelled."""
        run_id = message.data.decode(errors="replace").strip()
        for task, (job_run, cancel) in list(self._cancels.items()):
            if job_run != run_id:
                continue
            log.info("worker %s: run %s cancelled; stopping its job", self.job_type, run_id)
            cancel.set()  # first: the handler must see a cancel, not a withdrawal
            stop = self._stops.get(task)
            if stop is not None:
                stop.set()

    # --- dead letters ------------------------------------------------------------------------

    async def _dead_letter(self, data: bytes, reason: str, source: str, kind: str) -> None:
        assert self._js is not None
        await publish_dead_letter(self._js, self.topology, self.job_type, data, reason, source)
        self.metrics.dead_letters.labels(type=self.job_type, reason=kind).inc()

    async def _on_max_deliveries(self, advisory_message: Msg) -> None:
        try:
            advisory = MaxDeliveries.parse(advisory_message.data)
            await self._give_up(advisory)
        except Exception:
            log.exception("worker %s: cannot dead-letter after a max-deliveries advisory", self.job_type)

    async def _give_up(self, advisory: MaxDeliveries) -> None:
        """Move a job that exhausted its deliveries to the dead letters and fail it — unless it
        did finish (only its acks were lost): then its dispatcher gets the stored result."""
        assert self._js is not None
        try:
            raw = await self._js.get_msg(advisory.stream, advisory.sequence)
        except NotFoundError:
            return  # already removed (answered late, or handled by another worker)
        data = raw.data or b""
        try:
            envelope: JobEnvelope | None = JobEnvelope.model_validate_json(data)
        except ValidationError:
            envelope = None
        limit = self.nats.large_result_bytes
        stored = None if envelope is None else await asyncio.to_thread(stored_reply, self.storage, envelope.job, limit)
        if envelope is not None and stored is not None:
            with contextlib.suppress(NotFoundError):
                await self._js.delete_msg(advisory.stream, advisory.sequence)
            await self._reply(envelope, stored, data, f"{advisory.stream}:{advisory.sequence}")
            return
        reason = (
            f"gave up after {advisory.deliveries} deliveries: the job never finished "
            "(its worker crashed or lost it every time)"
        )
        await self._dead_letter(data, reason, f"{advisory.stream}:{advisory.sequence}", "max_deliveries")
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(advisory.stream, advisory.sequence)
        if envelope is None:
            log.error("worker %s: dead-lettered message %s: %s", self.job_type, advisory.sequence, reason)
            return
        job = envelope.job
        log.error("worker %s: job %s dead-lettered: %s", self.job_type, job.id, reason)
        await self._record_failure(job, reason)
        result = JobResult(job_id=job.id, status=JobStatus.FAILED, error=reason)
        reply = await asyncio.to_thread(store_result, self.storage, job, result, limit)
        await self._reply(envelope, reply, data, f"{advisory.stream}:{advisory.sequence}")


async def _abandon(pull: Any, fetch: asyncio.Future[Any]) -> None:
    """Cancel a lane's waiting pull; a job the server sent meanwhile (it sits in the pull
    subscription's queue, nobody will take it) is released for redelivery at once."""
    fetch.cancel()
    with contextlib.suppress(BaseException):
        await fetch
    queue = getattr(getattr(pull, "_sub", None), "_pending_queue", None)  # nats-py's pending messages
    while queue is not None and not queue.empty():
        message = queue.get_nowait()
        if JetStreamContext.is_status_msg(message):  # the pull's own end (timeout, no messages)
            continue
        with contextlib.suppress(Exception):
            await message.nak()


async def serve(worker: Worker) -> None:
    """Run ``worker`` until SIGTERM or SIGINT, then shut it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
