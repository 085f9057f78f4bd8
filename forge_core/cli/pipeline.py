"""``forge run``: the whole pipeline for one commit on one machine.

The same parts as a fleet, composed in one process: the Platform API (the configured one, or
served in-process on the SQLite file of the state directory), NATS (the configured server, or a
private ``nats-server`` started here), in-process workers for the ``discovery``, ``ci`` and
``artifact`` job types, and the embedded orchestrator driving dispatchers. After the phase groups
the artifacts of the releasing projects are produced, and published with ``publish`` (else every
publisher plans: no publisher's host is contacted). Then each releasing project's ``release`` job
makes its numbered release and Release image (in the release store, the embedded OCI layout by
default), and a new release the environments let auto-deploy goes to the first environment: a
``deployment`` job commits its ReleasePointer to the GitOps repository (see
:mod:`forge_core.cli.stages`). Without ``publish`` the release names the planned locations, which
carry the digest the artifact has (the same bytes a publish would push): the release is real and
deployable from the embedded store, the summary says nothing was published. Every job travels the
bus; every state change goes through the API; progress is read back from the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import re
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console, RenderableType
from rich.live import Live

from forge_core.adapters import structured_logs
from forge_core.adapters.bus.local_server import LocalNatsServer
from forge_core.adapters.git import CommitReader
from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.state import FolderClaim
from forge_core.adapters.storage import FsspecStore
from forge_core.builtin.discovery import resolve_event
from forge_core.cli.platform import LOCAL_PERMISSIONS, platform_client
from forge_core.cli.progress import RunView, run_tree
from forge_core.cli.stages import (
    Landed,
    StageFailed,
    StagesReport,
    artifact_results,
    auto_deploy_decision,
    committed_at,
    land_deployments,
    release,
    release_payload,
)
from forge_core.domain.config import ProjectConfigError
from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import ArtifactSource, SourceRef, attempt_job_id
from forge_core.domain.models import Job, JobStatus, RunStatus, SourceEvent
from forge_core.domain.plan import DiscoveryDocument
from forge_core.plugin.host import PluginHost
from forge_core.ports.orchestrator import ArtifactStage, JobDispatcher
from forge_core.services import errors as api_errors
from forge_core.services import schemas
from forge_core.services.leases import driver_id, holding_lease
from forge_core.services.orchestrator import EmbeddedOrchestrator
from forge_core.services.run_launch import releasing_stage, still_to_run
from forge_core.settings import Settings
from forge_core.worker.embedded import embedded_jobs, start_private_nats

T = TypeVar("T")
DISCOVERY_TIMEOUT = 600.0
JOB_TYPES = ("discovery", "ci", "artifact", "release", "deployment")
RUN_PERMISSIONS = (*LOCAL_PERMISSIONS, "release", "deploy")
"""`forge run` on its own API also makes releases and deployments."""
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
    publish: bool = False,
    on_run: Callable[[str], None] | None = None, rerun: Rerun | None = None,
) -> int:
    """``on_run`` is told the run's id once it is recorded (``forge run --ui`` prints its page).
    ``rerun``: the commit's finished run is re-run as its next attempt (a commit without a run
    gets its first)."""
    claim = FolderClaim(settings.state_dir, "one forge run at a time drives a state directory")
    claim.acquire()  # before any run is recorded: a refused second run leaves no trace
    start_cue_early(settings)  # the CUE evaluator starts while the API and NATS do
    # The private nats-server too starts while the API does (a thread waits for its port).
    private_nats = asyncio.create_task(start_private_nats(settings.state_dir)) if settings.nats.url is None else None
    try:
        return await _run_claimed(settings, host, source, console, parallel, publish, on_run, rerun, private_nats)
    finally:
        if private_nats is not None:  # stopped by embedded_jobs once used; here if the run ended before
            with contextlib.suppress(Exception):
                await asyncio.to_thread((await private_nats).stop)
        claim.release()


@dataclass(frozen=True)
class Rerun:
    """``forge run --rerun``: only the tasks that did not succeed, or (``--all``) every task."""

    only_failed: bool = True
def start_cue_early(settings: Settings) -> threading.Thread:
    """Import the CUE adapter and start the process's shared evaluator on a thread, while `forge
    run` starts the API and NATS, so discovery finds it ready. A failure here is left for that
    discovery to report, with its context."""

    def start() -> None:
        with contextlib.suppress(Exception):
            from forge_core.adapters.cue import shared_evaluator  # imported here: off the start-up's path

            shared_evaluator(settings.cue).start()

    thread = threading.Thread(target=start, name="forge-cue-start", daemon=True)
    thread.start()
    return thread


async def _run_claimed(
    settings: Settings, host: PluginHost, source: Source, console: Console, parallel: int, publish: bool,
    on_run: Callable[[str], None] | None, rerun: Rerun | None, private_nats: Awaitable[LocalNatsServer] | None,
) -> int:
    storage = FsspecStore.from_settings(settings.storage)
    structured_logs.configure(path=settings.state_dir / "forge.log")  # the terminal is for the user
    async with platform_client(settings, host, permissions=RUN_PERMISSIONS) as client:
        event = source.event
        create = schemas.RunCreate(
            repository=source.identity, commit_sha=event.commit, branch=event.branch, tag=event.tag,
            triggered_by=_login_name(), trigger_type=schemas.TriggerType.MANUAL,
        )
        try:
            run: schemas.RunSummary = await client.create_run(create)
        except api_errors.Conflict as conflict:
            existing = await client.get_run(str(conflict.details.get("run_id")))
            if rerun is None:
                console.print(
                    f"[yellow]commit {event.commit[:12]} already has run {existing.id}[/] (one run per commit; "
                    "forge run --rerun re-runs its failed tasks, --rerun --all every task); its result:"
                )
                console.print(run_tree(existing))
                return EXIT.get(existing.status, 1)
            run = await client.rerun(str(existing.id), only_failed=rerun.only_failed)  # 409 while it is open
            which = "the tasks that did not succeed" if rerun.only_failed else "every task"
            console.print(f"re-running {which} of run {run.id} (attempt {run.attempt})")
        run_id = str(run.id)
        refs = [f"branch {event.branch}" if event.branch else "", f"tag {event.tag}" if event.tag else ""]
        where = ", ".join(filter(None, refs)) or "detached"
        console.print(f"run [bold]{run_id}[/]: {source.identity} @ {event.commit[:12]} ({where})")
        report = StagesReport()
        if on_run is not None:
            on_run(run_id)
        lease = holding_lease(client, run_id, driver_id("forge-run"), settings.leases)
        async with lease, _closed_on_error(client, run_id):  # killed outright: the lease lapses
            document = await _execute(settings, host, source, client, storage, console, run_id, parallel, publish,
                                      report, run.attempt, private_nats)
            if document is None:
                return 2
        final = await client.get_run(run_id)
    console.print(run_tree(final, report))
    if final.attempts:
        earlier = "; ".join(f"{a.number} {a.status.value}" + (f" ({a.error})" if a.error else "")
                            for a in final.attempts)
        console.print(f"earlier attempts: {earlier}  (each: GET /v1/runs/{run_id}?attempt=N)", highlight=False)
    _print_release_stages(console, document, final, publish, report, settings)
    console.print(f"logs: {storage.location(f'logs/{run_id}')}  (forge logs {run_id})")
    return EXIT.get(final.status, 1)  # the recorded status: a cancellation through the API wins


async def _execute(
    settings: Settings, host: PluginHost, source: Source, client: PlatformClient, storage: FsspecStore,
    console: Console, run_id: str, parallel: int, publish: bool, report: StagesReport, attempt: int = 1,
    private_nats: Awaitable[LocalNatsServer] | None = None,
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
        job_types=JOB_TYPES, concurrency=parallel, private_nats=private_nats,
    ) as dispatcher:
        await client.set_run_status(run_id, RunStatus.RUNNING.value)
        console.print("discovery…")
        job = Job(
            id=attempt_job_id(f"discovery-{run_id}", attempt), type="discovery", run_id=run_id,
            payload={"repository": str(source.path), "commit": event.commit, "branch": event.branch,
                     "tag": event.tag},
        )
        result = await dispatcher.dispatch(job, DISCOVERY_TIMEOUT)
        if result.status is not JobStatus.SUCCESS:
            await client.set_run_status(run_id, RunStatus.FAILED.value, error=f"discovery: {result.error}")
            _print_discovery_failure(console, result.output, result.error)
            return None
        document = DiscoveryDocument.model_validate(result.output)
        recorded = still_to_run(await client.record_plan(run_id, document.run_plan().model_dump(mode="json")))
        async with _watching(client, run_id, console, report) as cancel:
            recorder = UntilCancelled(client, run_id, cancel)
            orchestrator = EmbeddedOrchestrator(dispatcher, recorder, max_parallel=parallel)
            stage = artifact_stage(document, source, publish, attempt)

            async def then() -> str | None:
                return await release_stages(settings, dispatcher, client, document, source, run_id, console, report,
                                            publish=publish)

            await orchestrator.execute(
                run_id, recorded, SourceRef(repository=str(source.path), commit=event.commit), cancel=cancel,
                artifacts=dataclasses.replace(stage, then=then),
            )
    return document


async def release_stages(
    settings: Settings, dispatcher: JobDispatcher, client: PlatformClient, document: DiscoveryDocument,
    source: Source, run_id: str, console: Console, report: StagesReport, *, publish: bool = False,
    actor: str | None = None,
) -> str | None:
    """The release stage (one ``release`` job per releasing project), then the auto-deployment of
    the new releases to the first environment (one ``deployment`` job: one GitOps commit). Fills
    ``report``; returns why a stage failed (the run fails), else None. Without ``publish`` a
    project whose artifacts have no planned location (a publisher that cannot plan) is not
    released, with the reason: only publishing tells where they go. ``actor``: who the
    deployments are by (the auto-deployment rules judge them); unset, this machine's user."""
    releasing = [p for p in document.projects if p.release.release and p.resources]
    # A release is rendered deploy resources: a project without them (a library) has nothing to release here.
    report.not_released = [f"{p.project.name}: not released — it declares no deploy resources"
                           for p in document.projects if p.release.release and not p.resources]
    if not releasing:
        return None
    actor = actor or _login_name()
    try:
        records = (await client.get_run(run_id)).artifact_records
        committed = committed_at(source.path, document.event.commit)
        for project in releasing:
            try:
                artifacts = artifact_results(records, project.project.name)
            except StageFailed as unplaced:
                if publish:
                    raise
                report.not_released.append(f"{project.project.name}: not released — {unplaced.message}")
                continue
            payload = release_payload(
                project, document, identity=source.identity, committed=committed, artifacts=artifacts,
                kubernetes_version=settings.render.kubernetes_version,
            )
            report.releasing(project.project.name)
            try:
                report.released(await release(dispatcher, run_id, payload))
            except ForgeError as failed:
                report.release_failed(project.project.name, str(failed))
                raise
        pending: dict[str, list[schemas.Deployment]] = {}
        for released in report.releases:
            decision = auto_deploy_decision(document, released, author=actor)
            if not decision.allowed:
                report.not_deployed.append(decision.explain())
                continue
            created = await client.create_deployment(released.release_id, decision.environment, status="pending")
            pending.setdefault(decision.environment, []).append(schemas.Deployment.model_validate(created))
        for environment, deployments in pending.items():
            report.deploying(environment, deployments)
            try:
                landed = await land_deployments(dispatcher, client, deployments, actor=actor)
            except ForgeError as failed:
                report.deployment_failed(environment, deployments, str(failed))
                raise
            report.deployed(landed, deployments)
    except ForgeError as error:
        return str(error)
    return None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "forge-cli"


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

    async def record_artifact(
        self, run_id: str, project: str, artifact: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.client.record_artifact(run_id, project, artifact, record)

    async def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None:
        return await self.client.artifact_record(run_id, project, artifact)


@contextlib.asynccontextmanager
async def _watching(
    client: PlatformClient, run_id: str, console: Console, stages: StagesReport | None = None
) -> AsyncIterator[asyncio.Event]:
    """Live progress read back from the API (its changes only: :func:`follow`); the run is
    cancelled by Ctrl-C or by the API (``DELETE /v1/runs/{id}``), either of which sets the event
    the orchestrator watches."""
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        loop.add_signal_handler(signal.SIGINT, cancel.set)

    async def watch(live: Live) -> None:
        await follow(client, run_id, live.update, cancel, stages=stages)

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


NOTHING_SINCE = 2**62
"""A cursor past every change: the answer holds the run's cursor and progress, no part of it."""


async def follow(
    client: PlatformClient, run_id: str, show: Callable[[RenderableType], object], cancel: asyncio.Event, *,
    stages: StagesReport | None = None, interval: float = 0.25,
) -> None:
    """Keep showing the run: read it whole once, then only its changes every ``interval``
    (``GET /v1/runs/{id}/progress?since=``), applied to the view node by node — a refresh costs
    what changed. The run is read whole again only when the changes name a part the view does
    not have (its plan was recorded meanwhile). A cancelled run sets ``cancel``. Runs until cancelled."""
    cursor = (await client.run_changes(run_id, NOTHING_SINCE)).cursor  # first: later changes come again
    view = RunView(await client.get_run(run_id), stages)
    view.cursor = cursor
    while True:
        changes = await client.run_changes(run_id, view.cursor)
        if not view.knows(changes):
            view = RunView(await client.get_run(run_id), stages)
            view.cursor = changes.cursor
        else:
            view.apply(changes)
        show(view.renderable())
        if changes.run.status is RunStatus.CANCELLED:
            cancel.set()
        await asyncio.sleep(interval)


def _print_discovery_failure(console: Console, output: dict[str, object], error: str | None) -> None:
    document = DiscoveryDocument.model_validate(output) if output else None
    if document is not None and document.diagnostics:
        console.print(f"[red]discovery found {len(document.diagnostics)} problem(s):[/]")
        console.print(str(ProjectConfigError(list(document.diagnostics))), highlight=False)
    else:
        console.print(f"[red]discovery failed:[/] {error}", highlight=False)


def artifact_stage(document: DiscoveryDocument, source: Source, publish: bool, attempt: int = 1) -> ArtifactStage:
    """The artifacts of the projects that release on this commit, from the local checkout."""
    event = source.event
    return releasing_stage(document, ArtifactSource(
        repository=str(source.path), commit=event.commit, branch=event.branch, tag=event.tag,
        identity=source.identity,
    ), publish, attempt=attempt)


def _print_release_stages(
    console: Console, document: DiscoveryDocument, run: schemas.Run, publish: bool, report: StagesReport,
    settings: Settings,
) -> None:
    """What happens after the phases: each project's release decision, what its artifacts became
    (produced, and per target where it went or would go), the releases made, and where each
    deployment's pointer is with the command that renders it."""
    for project in document.projects:
        verdict = f"release {project.release.version or ''}".strip() if project.release.release else "no release"
        console.print(f"  {project.project.name}: {verdict} — {project.release.reason}", highlight=False)
    releasing = [p for p in document.projects if p.release.release]
    if run.status is not RunStatus.SUCCESS and not run.artifact_records:
        console.print("[yellow]artifact stage skipped:[/] the run did not succeed", highlight=False)
    elif not releasing:
        console.print("[yellow]artifact stage skipped:[/] no project releases on this commit", highlight=False)
    else:
        mode = "published" if publish else "planned (no publisher contacted; --publish publishes)"
        console.print(f"artifacts ({mode}):", highlight=False)
        if not run.artifact_records:
            console.print("  (the releasing projects declare no artifacts)")
        for record in run.artifact_records:
            console.print(artifact_lines(record), highlight=False)
    if not releasing:
        return
    if not report.releases and not report.not_released:
        why = "the run did not succeed" if run.status is not RunStatus.SUCCESS else "no release was made"
        console.print(f"[yellow]release and deployment stages skipped:[/] {why}", highlight=False)
        return
    for why in report.not_released:
        console.print(f"  {why}", highlight=False)
    note = "" if publish else " (its artifacts' planned locations: nothing was published)"
    console.print(f"releases{note}:", highlight=False)
    for made in report.releases:
        console.print(f"  {made.project} release {made.number}  aliases {', '.join(made.aliases)}\n"
                      f"           image: {made.image}", highlight=False)
    for refused in report.not_deployed:
        console.print(f"[yellow]not auto-deployed:[/] {refused}", highlight=False)
    for landed in report.landed:
        console.print(deployment_lines(landed, settings), highlight=False)
    if run.status is not RunStatus.SUCCESS and run.error:
        console.print(f"[red]stopped:[/] {run.error}", highlight=False)


def deployment_lines(landed: Landed, settings: Settings) -> str:
    """Where the pointers of one GitOps commit are, and the command that renders each."""
    lines = [f"deployed to {landed.environment}: GitOps commit {landed.gitops_commit} "
             f"in {landed.repository} (branch {landed.branch})"]
    for path in landed.paths:
        folder = str(Path(path).parent)
        lines += [
            f"  pointer: {path}",
            f"  render:  git clone -q -b {landed.branch} {landed.repository} gitops && cd gitops/{folder} && "
            f"FORGE_STATE_DIR={settings.state_dir} forge cmp generate",
        ]
    return "\n".join(lines)


def artifact_lines(record: schemas.ArtifactRecord) -> str:
    """One artifact's outcome for people: what was produced, then each target's."""
    head = f"  {record.status.value:<8} {record.project}/{record.artifact} ({record.type})"
    lines = [head + (f"  {record.digest}" if record.digest else "")]
    if record.error:
        lines.append(f"           error: {record.error}")
    for target in record.targets:
        where = target.uri or target.note or target.error or ""
        lines.append(f"           → {target.publisher} ({target.type}): {target.outcome.value}  {where}".rstrip())
    if record.tracking_oci_uri:
        lines.append(f"           tracking: {record.tracking_oci_uri}")
    return "\n".join(lines)
