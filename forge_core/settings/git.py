"""The git cache of the command line and services: one bare mirror per repository (a worker
keeps its mirrors in its own cache folder)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class GitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "catalyst-forge" / "git", description="Where the mirrors live."
    )
    lock_timeout: float = Field(default=600.0, description="Seconds to wait for another user of a mirror.")
