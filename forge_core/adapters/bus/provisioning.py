"""Creating the streams and consumers, idempotently, and reconciling changed settings.

Called by every worker at start (and by dispatchers for their own stream), so a fresh server, a
restarted one and one provisioned with older settings all end up as the settings say. A change
the server cannot make in place (retention, storage) is an error naming the stream, never a
silent delete of jobs in flight.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DiscardPolicy,
    ReplayPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from forge_core.adapters.bus.topology import Topology
from forge_core.domain.errors import MessagingError
from forge_core.domain.jobs import JOB_TYPES
from forge_core.settings.nats import NatsSettings

log = logging.getLogger("forge.bus")

DEAD_LETTER_MAX_AGE = 7 * 24 * 3600.0
"""Dead letters are kept a week for inspection (they are few: each one is a bug or an outage)."""


def work_queue_config(name: str, subjects: str, settings: NatsSettings) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[subjects],
        retention=RetentionPolicy.WORK_QUEUE,
        max_age=settings.max_age_seconds,
        max_msgs=settings.max_messages,
        discard=DiscardPolicy.NEW,  # full: refuse new jobs (the dispatcher fails fast), never drop queued ones
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
    )


def dead_letter_config(topology: Topology, settings: NatsSettings) -> StreamConfig:
    return StreamConfig(
        name=topology.dead_letter_stream,
        subjects=[topology.dead_letter_subjects],
        retention=RetentionPolicy.LIMITS,
        max_age=DEAD_LETTER_MAX_AGE,
        max_msgs=settings.max_messages,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
    )


def consumer_config(topology: Topology, job_type: str, settings: NatsSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=topology.consumer(job_type),
        filter_subject=topology.filter_subject(job_type),
        ack_policy=AckPolicy.EXPLICIT,
        replay_policy=ReplayPolicy.INSTANT,
        max_deliver=settings.max_deliver,
        ack_wait=getattr(settings.ack_wait, job_type),
        num_replicas=settings.replicas,
    )


_STREAM_FIELDS = ("subjects", "retention", "max_age", "max_msgs", "discard", "storage", "num_replicas")
_FIXED_STREAM_FIELDS = ("retention", "storage")
_CONSUMER_FIELDS = ("filter_subject", "ack_policy", "max_deliver", "ack_wait")


def _differences(wanted: Any, actual: Any, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if getattr(wanted, f) != getattr(actual, f)]


Action = Literal["created", "updated", "unchanged"]
"""What reconciling one stream or consumer did (``forge streams apply`` reports it)."""


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> Action:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
        return "created"
    changed = _differences(config, info.config, _STREAM_FIELDS)
    if not changed:
        return "unchanged"
    fixed = [f for f in changed if f in _FIXED_STREAM_FIELDS]
    if fixed:
        raise MessagingError(
            f"stream {config.name} exists with a different {', '.join(fixed)}; it cannot be changed in "
            "place: delete the stream (its jobs are lost) and start the workers again",
            where=config.name,
        )
    await js.update_stream(config)
    log.info("updated stream %s (%s)", config.name, ", ".join(changed))
    return "updated"


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> ConsumerInfo:
    return (await reconcile_consumer(js, stream, config))[0]


async def reconcile_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig
) -> tuple[ConsumerInfo, Action]:
    assert config.durable_name is not None
    try:
        info: ConsumerInfo = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        created: ConsumerInfo = await js.add_consumer(stream, config)
        log.info("created consumer %s on %s", config.durable_name, stream)
        return created, "created"
    changed = _differences(config, info.config, _CONSUMER_FIELDS)
    if not changed:
        return info, "unchanged"
    if "filter_subject" in changed:
        # A different filter is a different consumer: the server refuses it as an update.
        await js.delete_consumer(stream, config.durable_name)
        created = await js.add_consumer(stream, config)
    else:
        created = await js.add_consumer(stream, config)  # creating an existing durable updates it
    log.info("updated consumer %s on %s (%s)", config.durable_name, stream, ", ".join(changed))
    return created, "updated"


async def provision(
    js: JetStreamContext, topology: Topology, settings: NatsSettings, job_type: str | None = None
) -> None:
    """Every stream (and, for a worker, its consumer) as the settings say."""
    try:
        for name, subjects in topology.streams().items():
            await ensure_stream(js, work_queue_config(name, subjects, settings))
        await ensure_stream(js, dead_letter_config(topology, settings))
        if job_type is not None:
            await ensure_consumer(js, topology.stream(job_type), consumer_config(topology, job_type, settings))
    except MessagingError:
        raise
    except Exception as exc:
        raise MessagingError(f"cannot provision JetStream: {type(exc).__name__}: {exc}") from exc


async def apply_topology(
    js: JetStreamContext, topology: Topology, settings: NatsSettings
) -> list[tuple[str, str, Action]]:
    """Every stream and every worker type's consumer, as the settings say (an installation's
    bootstrap: ``forge streams apply``); returns (what, name, action) in the order applied."""
    done: list[tuple[str, str, Action]] = []
    current = "JetStream"
    try:
        for name, subjects in topology.streams().items():
            current = name
            done.append(("stream", name, await ensure_stream(js, work_queue_config(name, subjects, settings))))
        current = topology.dead_letter_stream
        done.append(("stream", current, await ensure_stream(js, dead_letter_config(topology, settings))))
        for job_type in JOB_TYPES:
            current = f"{topology.stream(job_type)}/{topology.consumer(job_type)}"
            config = consumer_config(topology, job_type, settings)
            _, action = await reconcile_consumer(js, topology.stream(job_type), config)
            done.append(("consumer", current, action))
    except MessagingError:
        raise
    except Exception as exc:
        raise MessagingError(f"cannot apply it: {type(exc).__name__}: {exc}", where=current) from exc
    return done


async def ensure_job_stream(js: JetStreamContext, topology: Topology, settings: NatsSettings, job_type: str) -> None:
    """The one stream a dispatcher publishes to (cheap: one request when it exists)."""
    name = topology.stream(job_type)
    try:
        await ensure_stream(js, work_queue_config(name, topology.streams()[name], settings))
    except MessagingError:
        raise
    except Exception as exc:
        raise MessagingError(f"cannot provision stream {name}: {type(exc).__name__}: {exc}", where=name) from exc


async def remove_streams(js: JetStreamContext, prefix: str) -> list[str]:
    """Delete every stream whose name starts with ``prefix-`` (a test's, or a retired installation's
    under its own prefix); returns their names."""
    removed = []
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(f"{prefix}-"):
            await js.delete_stream(info.config.name)
            removed.append(info.config.name)
    return removed
