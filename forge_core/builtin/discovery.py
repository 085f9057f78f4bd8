"""The ``discovery`` job handler, and the wiring that the CLI shares with it.

Payload: ``repository`` (a URL or path git can clone), ``commit`` (any revision; default the tag's
commit, else HEAD), ``branch``, ``tag``. The result's output is the discovery document; a
document with diagnostics is a failed job (its output still reports every project).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core.domain.models import EventKind, Job, JobResult, JobStatus, SourceEvent
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import JobHandlerRegistrar, Registry
from forge_core.ports.contexts import JobContext

if TYPE_CHECKING:  # the adapters (gitpython, ...) are imported on first use, not at plugin load
    from forge_core.adapters.git import CommitReader
    from forge_core.services.discovery import Discovery
    from forge_core.services.evaluation import CueEvaluator
    from forge_core.settings.cue import CueSettings


def resolve_event(
    reader: CommitReader, repository: str, *, commit: str | None, branch: str | None, tag: str | None,
    detect: bool = False,
) -> SourceEvent:
    """The event discovery looks at: the commit resolved, the tag checked against it. With
    ``detect`` and nothing given, HEAD's branch and a tag pointing at HEAD are taken."""
    from forge_core.adapters.git import GitError

    if tag is not None:
        if not reader.has_tag(tag):
            raise GitError(f"no tag {tag!r} in this repository", where=f"refs/tags/{tag}")
        tagged = reader.resolve(f"refs/tags/{tag}")
        resolved = reader.resolve(commit) if commit else tagged
        if resolved != tagged:
            raise GitError(f"tag {tag!r} points at {tagged[:12]}, not at {resolved[:12]}", where=f"refs/tags/{tag}")
    else:
        resolved = reader.resolve(commit or "HEAD")
        if detect and commit is None and branch is None:
            branch = reader.current_branch()
            tag = next(iter(_release_tags(reader, resolved)), None)
    # a tag event sees every release tag of its commit: the commit gets one run, not one per tag
    tags = _release_tags(reader, resolved) if tag else ()
    kind = EventKind.TAG if tag else EventKind.PUSH
    return SourceEvent(repository=repository, commit=resolved, branch=branch, tag=tag, kind=kind, tags=tags)


def _release_tags(reader: CommitReader, commit: str) -> tuple[str, ...]:
    # only release tags drive releases; others (nightly-build, …) are no one's event
    return tuple(t for t in reader.tags_at(commit) if is_release_tag(t))


def is_release_tag(tag: str) -> bool:
    """A tag either tagging strategy reads as a version: ``<project>/v1.2.3`` or ``v1.2.3``."""
    from forge_core.domain.triggers import tag_version

    return tag_version(tag, None, "monorepo") is not None or tag_version(tag, None, "tag-all") is not None


def new_discovery(
    registry: Registry, evaluator: CueEvaluator, cache_dir: Path | None, cue: CueSettings | None = None
) -> Discovery:
    from forge_core.services.discovery import BATCH_PROJECTS, Discovery
    from forge_core.services.discovery_cache import DiscoveryCache

    batch = cue.batch_projects if cue is not None else BATCH_PROJECTS
    parallel = getattr(evaluator, "size", 1)  # a pool evaluates that many batches at once
    return Discovery(registry, evaluator, DiscoveryCache(cache_dir), batch_projects=batch, parallel=parallel)


class DiscoveryHandler:
    """Discovers the payload's commit from the worker's git cache, with the process's evaluator
    (:func:`~forge_core.adapters.cue.shared_evaluator`: ``forge run`` starts it early)."""

    def __init__(self) -> None:
        self._evaluator: CueEvaluator | None = None

    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        from forge_core.adapters.cue import shared_evaluator
        from forge_core.adapters.git import GitCache
        from forge_core.domain.config import ProjectConfigError
        from forge_core.domain.errors import ForgeError
        from forge_core.settings.cue import CueSettings

        payload = job.payload
        try:
            url = str(payload["repository"])
            # The worker's mirrors and CUE settings; without them (a bare context) the cache folder
            # holds the mirrors and the default evaluator is used.
            if self._evaluator is None:
                self._evaluator = shared_evaluator(ctx.cue or CueSettings())  # started early by forge run
            mirrors = ctx.git or GitCache.for_worker(ctx.cache_dir)
            # the commit, when given, is what must be in the mirror (a tag may have moved since)
            reader, _ = mirrors.open(url, payload.get("commit") or payload.get("tag") or "HEAD")
            ctx.heartbeat()
            event = resolve_event(
                reader, url, commit=payload.get("commit"), branch=payload.get("branch"), tag=payload.get("tag")
            )
            discovery = new_discovery(ctx.registry, self._evaluator, ctx.cache_dir / "discovery", ctx.cue)
            document = discovery.discover(reader, event)
        except KeyError as missing:
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=f"payload has no {missing}")
        except ForgeError as error:
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=str(error))
        output = document.model_dump(mode="json")
        if document.diagnostics:
            problems = ProjectConfigError(list(document.diagnostics))
            return JobResult(job_id=job.id, status=JobStatus.FAILED, output=output, error=str(problems))
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output=output)


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add(
        "discovery",
        "forge_core.builtin.discovery:DiscoveryHandler",
        description="Discover a commit of a monorepo into an execution plan",
    )
