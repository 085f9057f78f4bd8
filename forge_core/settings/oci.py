"""OCI stores: the embedded image-layout folder, and how registries are reached."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class OciSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layout_dir: Path = Field(
        default=Path("oci"),
        description="The embedded OCI store: a folder of OCI image layouts, one per repository "
        "(relative paths are under state_dir).",
    )
    insecure_registries: list[str] = Field(
        default_factory=list,
        description="Registries (host:port) reached over plain http. Loopback hosts (127.0.0.1, "
        "localhost, [::1]) always are.",
    )
    attempts: int = Field(default=5, ge=1, le=20, description="Tries per request on connection errors, 5xx and 429.")
    backoff: float = Field(default=0.25, gt=0, description="Seconds before the first retry; doubled each time.")
    max_backoff: float = Field(default=8.0, gt=0, description="The longest wait between two tries, in seconds.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for a registry to answer a request.")
    chunk_size: int = Field(
        default=64 * 1024**2,
        ge=1024**2,
        description="Blobs larger than this are uploaded in chunks of this size (PATCH), smaller ones in one PUT.",
    )
