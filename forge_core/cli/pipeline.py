"""``forge run``: the whole pipeline for one commit on one machine.

The same parts as a fleet, composed in one process: the Platform API (the configured one, or
served in-process on the SQLite file of the state directory), NATS (the configured server, or a
private ``nats-server`` started here), in-process workers for the ``discovery`` and ``ci`` job
types, and the embedded orchestrator driving dispatchers. Every job travels the bus; every state
change goes through the API; progress is read back from the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.live import Live

from forge_core.adapters import structured_logs
from forge_core.adapters.git import CommitReader
from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.state import FolderClaim
from forge_core.adapters.storage import FsspecStore
from forge_core.builtin.discovery import resolve_event
from forge_core.cli.platform import platform_client
from forge_core.cli.progress import run_tree
from forge_core.domain.config import ProjectConfigError
from forge_core.domain.jobs import SourceRef
from forge_core.domain.models import Job, JobStatus, RunStatus, SourceEvent
from forge_core.domain.plan import DiscoveryDocument
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost
from forge_core.services import errors as api_errors
from forge_core.services import schemas
from forge_core.services.orchestrator import EmbeddedOrchestrator
from forge_core.settings import Settings
from forge_core.worker.embedded import embedded_jobs

T = TypeVar("T")
DISCOVERY_TIMEOUT = 600.0
RELEASE_STAGES = ("artifact", "release", "deployment")
EXIT = {RunStatus.SUCCESS: 0, RunStatus.FAILED: 1, RunStatus.CANCELLED: 130}


@dataclass(frozen=True)
class Source:
    """The commit `forge run` looks at, and how the platform names its repository."""

    path: Path
    identity: str
    event: SourceEvent


def locate(path: Path, *, commit: str | None, branch: str | None, tag: str | None) -> Source:
    """Resolve the commit in the repository at ``path`` (HEAD's branch and tag when not given)."""
    path = path.resolve()
    reader = CommitReader(path)
    event = resolve_event(reader, str(path), commit=commit, branch=branch, tag=tag, detect=True)
    return Source(path, repository_identity(path), event)


def repository_identity(path: Path) -> str:
    """``owner/name`` from the ``origin`` remote, else ``local/<folder>``."""
    remote = subprocess.run(
        ["git", "-C", str(path), "remote", "get-url", "origin"], capture_output=True, text=True
    ).stdout.strip()
    match = re.search(r"[:/]([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$", remote)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    return "local/" + (re.sub(r"[^A-Za-z0-9_.-]", "-", path.name) or "repository")


async def run_pipeline(
    settings: Settings, host: PluginHost, source: Source, console: Console, *, parallel: int = 4,
    on_run: Callable[[str], None] | None = None,
) -> int:
    """``on_run`` is told the run's id once it is recorded (``forge run --ui`` prints its page)."""
    claim = FolderClaim(settings.state_dir, "one forge run at a time drives a state directory")
    claim.acquire()  # before any run is recorded: a refused second run leaves no trace
    try:
        return await _run_claimed(settings, host, source, console, parallel, on_run)
    finally:
        claim.release()


async def _run_claimed(
    settings: Settings, host: PluginHost, source: Source, console: Console, parallel: int,
    on_run: Callable[[str], None] | None,
) -> int:
    storage = FsspecStore.from_settings(settings.storage)
    structured_logs.configure(path=settings.state_dir / "forge.log")  # the terminal is for the user
    async with platform_client(settings, host) as client:
        event = source.event
        create = schemas.RunCreate(
            repository=source.identity, commit_sha=event.commit, branch=event.branch, tag=event.tag,
            triggered_by=getpass.getuser(), trigger_type=schemas.TriggerType.MANUAL,
        )
        try:
            run = await client.create_run(create)
        except api_errors.Conflict as conflict:
            existing = await client.get_run(str(conflict.details.get("run_id")))
            console.print(
                f"[yellow]commit {event.commit[:12]} already has run {existing.id}[/] (one run per commit); "
                "its result:"
            )
            console.print(run_tree(existing))
            return EXIT.get(existing.status, 1)
        run_id = str(run.id)
        refs = [f"branch {event.branch}" if event.branch else "", f"tag {event.tag}" if event.tag else ""]
        where = ", ".join(filter(None, refs)) or "detached"
        console.print(f"run [bold]{run_id}[/]: {source.identity} @ {event.commit[:12]} ({where})")
        if on_run is not None:
            on_run(run_id)
        async with _closed_on_error(client, run_id):
            document = await _execute(settings, host, source, client, storage, console, run_id, parallel)
            if document is None:
                return 2
        final = await client.get_run(run_id)
    console.print(run_tree(final))
    _print_release_stages(console, host, document, final.status)
    console.print(f"logs: {storage.location(f'logs/{run_id}')}  (forge logs {run_id})")
    return EXIT.get(final.status, 1)  # the recorded status: a cancellation through the API wins


async def _execute(
    settings: Settings, host: PluginHost, source: Source, client: PlatformClient, storage: FsspecStore,
    console: Console, run_id: str, parallel: int,
) -> DiscoveryDocument | None:
    """Discovery, then the phase groups; None when discovery failed (the run is recorded failed)."""
    event = source.event
    # On one machine a stop (Ctrl-C, a failed group) should not wait out a fleet's grace period:
    # running steps are stopped after a second.
    grace = min(settings.worker.shutdown_grace_seconds, 1.0)
    worker = settings.worker.model_copy(update={"shutdown_grace_seconds": grace})
    settings = settings.model_copy(update={"worker": worker})
    async with embedded_jobs(
        settings, host, client, storage, state_dir=settings.state_dir,
        job_types=("discovery", "ci"), concurrency=parallel,
    ) as dispatcher:
        await client.set_run_status(run_id, RunStatus.RUNNING.value)
        console.print("discovery…")
        job = Job(
            id=f"discovery-{run_id}", type="discovery", run_id=run_id,
            payload={"repository": str(source.path), "commit": event.commit, "branch": event.branch,
                     "tag": event.tag},
        )
        result = await dispatcher.dispatch(job, DISCOVERY_TIMEOUT)
        if result.status is not JobStatus.SUCCESS:
            await client.set_run_status(run_id, RunStatus.FAILED.value, error=f"discovery: {result.error}")
            _print_discovery_failure(console, result.output, result.error)
            return None
        document = DiscoveryDocument.model_validate(result.output)
        recorded = await client.record_plan(run_id, document.run_plan().model_dump(mode="json"))
        async with _watching(client, run_id, console) as cancel:
            recorder = UntilCancelled(client, run_id, cancel)
            orchestrator = EmbeddedOrchestrator(dispatcher, recorder, max_parallel=parallel)
            await orchestrator.execute(
                run_id, recorded, SourceRef(repository=str(source.path), commit=event.commit), cancel=cancel
            )
    return document


@contextlib.asynccontextmanager
async def _closed_on_error(client: PlatformClient, run_id: str) -> AsyncIterator[None]:
    """Whatever stops `forge run` early (Ctrl-C, a lost bus, a bug) still closes the run: one run
    per commit means a run left `running` would block that commit for good."""
    try:
        yield
    except BaseException as error:
        interrupted = isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))
        status = RunStatus.CANCELLED if interrupted else RunStatus.FAILED
        reason = "interrupted" if interrupted else f"forge run stopped: {error}"
        with contextlib.suppress(Exception):
            run = await asyncio.shield(client.get_run(run_id))
            if run.status not in (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED):
                await asyncio.shield(client.set_run_status(run_id, status.value, error=reason))
        raise


class UntilCancelled:
    """The RunRecorder the orchestrator uses: the API refuses any change to a run cancelled
    through it (``DELETE /v1/runs/{id}``, a resource conflict); from then on the run stops and
    its remaining reports are moot, so they are dropped instead of failing the shutdown."""

    def __init__(self, client: PlatformClient, run_id: str, cancel: asyncio.Event) -> None:
        self.client, self.run_id, self.cancel = client, run_id, cancel

    async def _guard(self, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except api_errors.Conflict:  # code CONFLICT (forge_core.ports.platform)
            if (await self.client.get_run(self.run_id)).status is not RunStatus.CANCELLED:
                raise
            self.cancel.set()
            return None

    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        return await self.client.record_plan(run_id, plan)

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        await self._guard(self.client.set_run_status(run_id, status, error=error))

    async def set_phase_status(self, phase_id: str, status: str) -> None:
        await self._guard(self.client.set_phase_status(phase_id, status))

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        await self._guard(self.client.set_task_status(task_id, status, error=error))

    async def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None:
        await self._guard(self.client.set_step_status(step_id, status, exit_code=exit_code, logs_key=logs_key))


@contextlib.asynccontextmanager
async def _watching(client: PlatformClient, run_id: str, console: Console) -> AsyncIterator[asyncio.Event]:
    """Live progress read back from the API; the run is cancelled by Ctrl-C or by the API
    (``DELETE /v1/runs/{id}``), either of which sets the event the orchestrator watches."""
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        loop.add_signal_handler(signal.SIGINT, cancel.set)

    async def watch(live: Live) -> None:
        while True:
            run = await client.get_run(run_id)
            live.update(run_tree(run))
            if run.status is RunStatus.CANCELLED:
                cancel.set()
            await asyncio.sleep(0.25)

    with Live(console=console, refresh_per_second=8, transient=True) as live:
        watcher = asyncio.create_task(watch(live))
        try:
            yield cancel
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)


def _print_discovery_failure(console: Console, output: dict[str, object], error: str | None) -> None:
    document = DiscoveryDocument.model_validate(output) if output else None
    if document is not None and document.diagnostics:
        console.print(f"[red]discovery found {len(document.diagnostics)} problem(s):[/]")
        console.print(str(ProjectConfigError(list(document.diagnostics))), highlight=False)
    else:
        console.print(f"[red]discovery failed:[/] {error}", highlight=False)


def _print_release_stages(console: Console, host: PluginHost, document: DiscoveryDocument, status: RunStatus) -> None:
    """What happens after the phases: artifacts, release, deployment — or why they are skipped."""
    releasing = [p for p in document.projects if p.release.release]
    for project in document.projects:
        verdict = f"release {project.release.version or ''}".strip() if project.release.release else "no release"
        console.print(f"  {project.project.name}: {verdict} — {project.release.reason}", highlight=False)
    if status is not RunStatus.SUCCESS:
        reason = "the run did not succeed"
    elif not releasing:
        reason = "no project releases on this commit"
    else:
        missing = [stage for stage in RELEASE_STAGES if stage not in host.registry.names(Family.JOB_HANDLER)]
        reason = (
            f"no {missing[0]!r} job handler is installed (installed: "
            f"{', '.join(host.registry.names(Family.JOB_HANDLER))})"
            if missing
            else "forge run does not drive the release stages in this version"
        )
    console.print(f"[yellow]artifact, release and deployment stages skipped:[/] {reason}", highlight=False)



