"""What the job handlers that build from a commit share: the worker's services they need, and a
checkout of the commit with the project's folder checked to be inside it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.jobs import SourceRef
from forge_core.domain.models import Job
from forge_core.ports.contexts import JobContext
from forge_core.ports.platform import BlockingRunRecorder
from forge_core.ports.storage import ObjectStore


def needed(ctx: JobContext, handler: str) -> tuple[BlockingRunRecorder, ObjectStore]:
    """The worker's recorder and storage, or an error naming the handler and what is missing."""
    if ctx.recorder is None or ctx.storage is None:
        missing = " and ".join(n for n in ("recorder", "storage") if getattr(ctx, n) is None)
        raise ConfigurationError(f"the {handler} handler needs the worker's {missing}", where="JobContext")
    return ctx.recorder, ctx.storage


class Checkout(NamedTuple):
    root: Path
    """The commit's working tree (what producers and publishers get as ``workdir``)."""
    project: Path
    """The project's folder in it (where steps run)."""


@contextmanager
def commit_checkout(ctx: JobContext, job: Job, source: SourceRef, project_path: str, where: str) -> Iterator[Checkout]:
    """A checkout of ``source`` for the duration of the block (a folder of its own for every job,
    attempt and delivery, so a redelivery never shares one with an earlier delivery still being
    stopped): its root and the project's folder in it; a folder that is not in the commit is an
    error at ``where``."""
    from forge_core.adapters.git import GitCache, checked_out  # gitpython: on first use, not at plugin load

    dest = ctx.cache_dir / "work" / f"{job.id}.{job.attempt}.{uuid.uuid4().hex[:8]}"
    mirrors = GitCache.for_worker(ctx.cache_dir)
    with checked_out(mirrors, source.repository, source.commit, dest) as root:
        project = (root / project_path).resolve()
        if not project.is_dir() or not project.is_relative_to(root.resolve()):
            raise ConfigurationError(f"project folder {project_path!r} is not in commit {source.commit}", where=where)
        yield Checkout(root.resolve(), project)


@contextmanager
def project_checkout(ctx: JobContext, job: Job, source: SourceRef, project_path: str, where: str) -> Iterator[Path]:
    """The project's folder in a checkout of ``source`` (what a step runs in)."""
    with commit_checkout(ctx, job, source, project_path, where) as checkout:
        yield checkout.project
