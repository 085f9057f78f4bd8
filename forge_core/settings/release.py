"""Where Release images go."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_REGISTRY = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                       r"(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:]+\](?::[0-9]{1,5})?$")


class ReleaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = Field(
        default="",
        description="The registry (host[:port]) Release images are pushed to, as "
        "<registry>/<repository name>/<project>:<commit>. Empty: the embedded OCI layout store "
        "(oci.layout_dir under the state directory).",
    )

    @field_validator("registry")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not _REGISTRY.match(value):
            raise ValueError(f"{value!r} is not a registry host[:port] (no scheme, no path)")
        return value
