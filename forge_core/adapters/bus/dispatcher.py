"""The dispatcher: publish a job with a unique reply inbox, wait for the reply or the timeout.

Used by ``forge dispatch`` (one process per workflow task) and, in-process, by the embedded
orchestrator: the same code path either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError

from forge_core.adapters.bus.provisioning import ensure_job_stream
from forge_core.adapters.bus.results import read_reply
from forge_core.adapters.bus.topology import Topology
from forge_core.domain.errors import ForgeError, JobTimeoutError, MessagingError
from forge_core.domain.jobs import JobEnvelope
from forge_core.domain.models import Job, JobResult
from forge_core.ports.storage import ObjectStore
from forge_core.settings.nats import NatsSettings

log = logging.getLogger("forge.dispatcher")


class NatsDispatcher:
    """A :class:`~forge_core.ports.orchestrator.JobDispatcher` on JetStream."""

    def __init__(self, client: Client, settings: NatsSettings, storage: ObjectStore) -> None:
        self.client, self.settings, self.storage = client, settings, storage
        self.topology = Topology.from_settings(settings)
        self.js = client.jetstream()
        self._ready: set[str] = set()

    async def _ensure_stream(self, job_type: str) -> None:
        if job_type not in self._ready:
            await ensure_job_stream(self.js, self.topology, self.settings, job_type)
            self._ready.add(job_type)

    async def dispatch(self, job: Job, timeout: float) -> JobResult:
        subject = self.topology.subject(job)  # validates the type and the ids first
        stream = self.topology.stream(job.type)
        await self._ensure_stream(job.type)
        inbox = self.client.new_inbox()
        try:
            subscription = await self.client.subscribe(inbox, max_msgs=1)
        except Exception as exc:
            raise self._bus_error("cannot subscribe to a reply inbox", exc) from exc
        sequence: int | None = None
        try:
            data = JobEnvelope(job=job, reply_to=inbox).model_dump_json().encode()
            try:
                ack = await self.js.publish(
                    subject, data, stream=stream, timeout=max(1.0, self.settings.connect_timeout)
                )
            except Exception as exc:
                raise self._bus_error(f"cannot publish job {job.id} to {subject}", exc) from exc
            sequence = ack.seq
            log.debug("published job %s to %s (seq %s)", job.id, subject, sequence)
            try:
                reply = await subscription.next_msg(timeout=timeout)
            except (TimeoutError, NatsTimeoutError):
                if self.client.is_closed:
                    raise MessagingError(
                        f"lost the connection to NATS at {self._url()} while waiting for job {job.id}",
                        where=self._url(),
                    ) from None
                raise JobTimeoutError(
                    f"no reply for {job.type} job {job.id} within {timeout:g} s", where=subject
                ) from None
            except Exception as exc:  # the connection closed under us, …
                raise self._bus_error(f"lost the reply inbox of job {job.id}", exc) from exc
            sequence = None  # answered: nothing to withdraw
            return read_reply(reply.data, self.storage)
        finally:
            if sequence is not None:
                await self._withdraw(stream, sequence)
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _withdraw(self, stream: str, sequence: int) -> None:
        """Remove an unanswered job from the work queue, so it does not run after we gave up
        (a worker already running it finishes; its reply goes nowhere)."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self.js.delete_msg(stream, sequence))

    def _url(self) -> str:
        server = self.client.connected_url
        return server.geturl() if server is not None else str(self.settings.url)

    def _bus_error(self, what: str, exc: Exception) -> ForgeError:
        if isinstance(exc, ForgeError):
            return exc
        return MessagingError(f"{what} (NATS at {self._url()}): {type(exc).__name__}: {exc}", where=self._url())
