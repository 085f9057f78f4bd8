"""Object storage (fsspec): step logs and large job results."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


def _default_url() -> str:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(state) / "forge" / "storage")


class LogSettings(BaseModel):
    """Bounds of one step's log: its lines' length and its size (the head and the tail are kept)."""

    model_config = ConfigDict(extra="forbid")

    # 64 Ki characters is longer than any line a person reads; a longer one (a minified bundle,
    # a base64 blob) is data, and unbounded it once took `forge run` to 936 MB.
    max_line_length: int = Field(
        default=64 * 1024,
        ge=80,
        description="Longest line stored, in characters; a longer one is split, each later piece "
        "starting with the continuation mark `↪ `.",
    )
    # 16 MiB keeps the start of a step (what it ran) and its end (why it failed) in full for any
    # ordinary build, while a step that prints without end costs at most that on disk and half of
    # it in memory while it runs (the tail is held until the step ends).
    max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest size of one step's log in bytes; past it the first and the last half "
        "are kept and a line between them says how much was dropped.",
    )


class StorageSettings(BaseModel):
    """Where logs (``logs/<run>/<task>/<step>.log``) and large results (``results/…``) go."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default_factory=_default_url,
        description="A local folder or an fsspec URL (s3://bucket/prefix in a fleet).",
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="fsspec file-system options (endpoint_url, …)."
    )
    logs: LogSettings = Field(default_factory=LogSettings, description="Limits of step logs.")
