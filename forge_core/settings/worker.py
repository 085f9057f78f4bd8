"""The worker process: its cache, concurrency, metrics endpoint and the secrets its steps get."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from forge_core.settings.database import DEFAULT_STATE_DIR


def _default_cache() -> Path:
    # Under the state directory, never beside it (Settings places it under its own state_dir;
    # this is the default of a WorkerSettings made on its own).
    return Path(os.environ.get("FORGE_STATE_DIR") or DEFAULT_STATE_DIR) / "cache" / "worker"


class WorkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache_dir: Path = Field(
        default_factory=_default_cache, description="Git mirrors, materialised commits, checkouts and job locks "
        "(default: <state_dir>/cache/worker).",
    )
    concurrency: int = Field(default=1, ge=1, le=256, description="Jobs run at once.")
    metrics_host: str = Field(default="127.0.0.1", description="Address of the Prometheus endpoint.")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Unset: no endpoint.")
    shutdown_grace_seconds: float = Field(
        default=25, ge=0, description="On SIGTERM, wait this long for running jobs, then release them."
    )
    stop_wait_seconds: float = Field(
        default=10, ge=0, description="After the grace, wait this long for released jobs' handlers to stop "
        "(their steps killed) before handing the jobs back for redelivery.",
    )
    previous_delivery_wait_seconds: float = Field(
        default=120, ge=0, description="A redelivered job waits this long for an earlier delivery still "
        "stopping on this machine, then is left for a later redelivery (a job never runs twice at once).",
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Environment variables given to every step, masked in logs (JSON object).",
    )
