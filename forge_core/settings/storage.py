"""Object storage (fsspec): step logs and large job results."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


def _default_url() -> str:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(state) / "forge" / "storage")


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
