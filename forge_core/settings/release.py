"""Where Release images go."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReleaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = Field(
        default="",
        description="The registry (host[:port][/path]) Release images are pushed to, as "
        "<registry>/<repository name>/<project>:<commit>. Empty: the embedded OCI layout store "
        "(oci.layout_dir under the state directory).",
    )
