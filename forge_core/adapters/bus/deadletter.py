"""Dead letters: jobs that ran out of deliveries and messages no worker can read.

The message is copied, with the reason, to ``pipeline.deadletter.<type>`` (kept in the
``pipeline-deadletter`` stream) before the caller removes it from its work queue: a dead letter
is never lost between the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext

from forge_core.adapters.bus.topology import Topology

REASON_HEADER = "Forge-Dead-Letter-Reason"
SOURCE_HEADER = "Forge-Dead-Letter-Source"


@dataclass(frozen=True)
class MaxDeliveries:
    """The server's advisory that a job exhausted its deliveries."""

    stream: str
    consumer: str
    sequence: int
    deliveries: int

    @classmethod
    def parse(cls, data: bytes) -> MaxDeliveries:
        body: dict[str, Any] = json.loads(data)
        return cls(body["stream"], body["consumer"], int(body["stream_seq"]), int(body.get("deliveries", 0)))


async def publish_dead_letter(
    js: JetStreamContext, topology: Topology, job_type: str, data: bytes, reason: str, source: str
) -> None:
    """Keep ``data`` in the dead-letter stream with why and where it came from."""
    headers = {REASON_HEADER: reason.replace("\n", " ")[:1000], SOURCE_HEADER: source}
    await js.publish(
        topology.dead_letter_subject(job_type), data, stream=topology.dead_letter_stream, headers=headers
    )
