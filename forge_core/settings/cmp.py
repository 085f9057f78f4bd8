"""The Argo CD plugin (``forge cmp``): its cache, its archive limits, provenance, registry credentials."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from forge_core.domain.resources import ArchiveLimits


def _default_cache() -> Path | None:
    # In the Argo CD sidecar XDG_CACHE_HOME is the usual knob; without it the state dir's cache
    # is used (filled in by Settings).
    cache = os.environ.get("XDG_CACHE_HOME")
    return Path(cache) / "forge" / "cmp" if cache else None


class CmpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache_dir: Path | None = Field(
        default_factory=_default_cache,
        description="Rendered releases, one entry per Release image manifest digest (default: "
        "$XDG_CACHE_HOME/forge/cmp, else <state_dir>/cache/cmp).",
    )
    verify_provenance: bool = Field(
        default=False,
        description="Check every artifact's tracking image named in the release metadata: it exists, "
        "is a tracking image, and has the digest the release recorded.",
    )
    limits: ArchiveLimits = Field(
        default_factory=ArchiveLimits, description="Bounds on reading a Release image's resources layer."
    )
    username: str | None = Field(default=None, description="User name for the release registry, if it asks.")
    password: SecretStr | None = Field(default=None, description="Password or token for the release registry.")

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> CmpSettings:
        if (self.username is None) != (self.password is None):
            given = "username" if self.username is not None else "password"
            raise ValueError(f"registry credentials need both username and password; only {given} is set")
        return self
