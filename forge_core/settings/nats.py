"""The job bus: where NATS is, how the JetStream streams and consumers are configured."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AckWaitSettings(BaseModel):
    """How long a worker may hold a job without acking (seconds), per job type.

    Long jobs stay alive past this through in-progress acks; a worker that dies stops sending
    them, and the job is redelivered when the wait runs out.
    """

    model_config = ConfigDict(extra="forbid")

    discovery: float = Field(default=600, gt=0)
    ci: float = Field(default=1800, gt=0)
    artifact: float = Field(default=1200, gt=0)
    release: float = Field(default=900, gt=0)
    deployment: float = Field(default=600, gt=0)


class NatsSettings(BaseModel):
    """NATS JetStream: the server, the streams' limits and the consumers' delivery rules."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, description="nats:// URL of the server (unset: `forge run` starts a private one)."
    )
    token: SecretStr | None = Field(
        default=None, description="Authentication token for the server (the private one generates its own)."
    )
    replicas: int = Field(default=1, ge=1, le=5, description="Stream replicas (3 in a fleet).")
    prefix: str = Field(
        default="",
        pattern=r"^[a-z0-9_-]*$",
        description="Prefix of stream, subject and consumer names (empty in production; tests isolate with it).",
    )
    max_deliver: int = Field(default=3, ge=1, description="Deliveries of a job before it is dead-lettered.")
    max_age_seconds: float = Field(default=3600, gt=0, description="Jobs older than this are discarded.")
    max_messages: int = Field(default=1000, ge=1, description="Jobs held per stream.")
    ack_wait: AckWaitSettings = Field(default_factory=AckWaitSettings)
    connect_timeout: float = Field(default=2.0, gt=0, description="Seconds to reach the server at start.")
    reconnect_attempts: int = Field(
        default=30, ge=0, description="Reconnects (2 s apart) after losing the server, then give up."
    )
    large_result_bytes: int = Field(
        default=1_000_000, ge=1, description="Results larger than this travel by object-storage reference."
    )
