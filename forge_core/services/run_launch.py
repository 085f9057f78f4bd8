"""Launching a claimed run on this machine: fetch, discover, record the plan, orchestrate.

What the run starter hands a run to in ``forge server`` (and, with the Argo orchestrator, in each
API replica): the repository's clone URL comes from the settings (one per repository), else the
run (the URL its push webhook named), else the settings' template; discovery is a ``discovery`` job (its worker
fetches the commit into the warm git cache), its plan is recorded through the API, then the
orchestrator runs the phase groups and, for the projects that release, the artifact stage. Each
launched run executes in the background; anything that stops it closes the run failed with why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.jobs import ArtifactSource, SourceRef, attempt_job_id
from forge_core.domain.models import Job, JobStatus, RunStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.ports.orchestrator import ArtifactStage, JobDispatcher, Orchestrator
from forge_core.ports.platform import CONFLICT, RunRecorder
from forge_core.services import schemas as s
from forge_core.services.leases import LeaseHolder, holding_lease
from forge_core.settings.leases import LeaseSettings
from forge_core.settings.server import ServerSettings

log = logging.getLogger("forge.run_launch")
DISCOVERY_TIMEOUT = 600.0


def clone_url(settings: ServerSettings, run: s.RunSummary) -> str:
    """Where the run's repository is fetched from: the one configured for it (an operator's
    mirror wins), else the clone URL its trigger named (a push webhook's), else the template; a
    clear error when nobody said."""
    if run.repository in settings.repositories:
        return settings.repositories[run.repository]
    if run.clone_url:
        return run.clone_url
    if settings.clone_url:
        return settings.clone_url.replace("{repository}", run.repository)
    raise ConfigurationError(
        f"no clone URL for repository {run.repository}: the run names none; set FORGE_SERVER__REPOSITORIES "
        f"('{{\"{run.repository}\": \"<url>\"}}') or FORGE_SERVER__CLONE_URL",
        where="FORGE_SERVER__REPOSITORIES",
    )


def releasing_stage(
    document: DiscoveryDocument, source: ArtifactSource, publish: bool, author: str | None = None,
    attempt: int = 1,
) -> ArtifactStage:
    """The artifacts of the projects that release on this commit (discovery decided which), on
    the run's ``attempt``, with the document an orchestrator running the release and deployment
    stages itself reads."""
    releasing = {p.project.name: p.release.version or "" for p in document.projects if p.release.release}
    return ArtifactStage(
        artifacts=tuple(a for a in document.run_plan().artifacts if a.project.name in releasing),
        source=source, publish=publish,
        versions={name: version for name, version in releasing.items() if version},
        document=document, author=author, attempt=attempt,
    )


def still_to_run(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recorded plan without the tasks that already succeeded (a re-run of only the failed
    tasks carries them over): what the orchestrator is given."""
    phases = [
        {**phase, "tasks": [t for t in phase.get("tasks", ()) if t.get("status") != RunStatus.SUCCESS.value]}
        for phase in recorded.get("phases", ())
    ]
    return {**recorded, "phases": phases}


AfterArtifacts = Callable[[s.RunSummary, DiscoveryDocument, str], Callable[[], Awaitable[str | None]]]
"""Given a run, its discovery document and its clone URL: the stages after its artifacts (the
release and deployment stages, run in this process), returning why they failed, else None."""


@dataclass(frozen=True)
class Lease:
    """How a launcher holds the lease of each run it executes: through ``holder`` (the API
    client), as ``driver`` (see :func:`~forge_core.services.leases.driver_id`)."""

    holder: LeaseHolder
    driver: str
    settings: LeaseSettings


class PipelineLauncher:
    """A :class:`~forge_core.services.run_starter.RunLauncher` executing runs in this process."""

    def __init__(
        self, settings: ServerSettings, dispatcher: JobDispatcher, recorder: RunRecorder,
        orchestrator: Orchestrator, *, publish: bool = False,
        status_of: Callable[[str], Awaitable[str]] | None = None,
        lease: Lease | None = None, after_artifacts: AfterArtifacts | None = None,
    ) -> None:
        """``status_of``: the run's recorded status; when given, a run cancelled through the API
        (``DELETE /v1/runs/{id}``) is stopped in the orchestrator. ``lease``: each run's lease is
        held while it executes (a killed server's runs are then closed failed by the API).
        ``after_artifacts``: the release and deployment stages, for an orchestrator that does not
        run them itself (the embedded one; an Argo Workflow has tasks of its own for them)."""
        self.settings, self.dispatcher, self.recorder = settings, dispatcher, recorder
        self.orchestrator, self.publish, self.status_of = orchestrator, publish, status_of
        self.lease, self.after_artifacts = lease, after_artifacts
        self.running: dict[str, asyncio.Task[None]] = {}
        self.handed_over: set[str] = set()
        """Runs given to the orchestrator (past discovery): detaching leaves these to it."""
        self._detaching = False

    async def launch(self, run: s.RunSummary) -> None:
        url = clone_url(self.settings, run)  # raising here: the starter fails the run
        run_id = str(run.id)
        task = asyncio.create_task(self._execute(run, url), name=f"run-{run_id}")
        self.running[run_id] = task
        task.add_done_callback(lambda _: self.running.pop(run_id, None))

    async def aclose(self, *, detach: bool = False) -> None:
        """Stop the runs still executing (each is closed cancelled by the orchestrator). With
        ``detach`` (an API replica stopping in a fleet) a run already handed to an orchestrator
        that lives on without this process (an Argo Workflow, which closes its run itself) is
        only let go; a run still being discovered is closed cancelled."""
        self._detaching = detach
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _execute(self, run: s.RunSummary, url: str) -> None:
        run_id = str(run.id)
        try:
            if self.lease is None:
                await self._drive(run, url)
                return
            async with holding_lease(self.lease.holder, run_id, self.lease.driver, self.lease.settings):
                await self._drive(run, url)
        except asyncio.CancelledError:
            if self._detaching and run_id in self.handed_over:
                log.info("run %s is left to its orchestrator: this process stops", run_id)
            else:
                await self._fail(run_id, "the server stopped", RunStatus.CANCELLED)
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
            log.exception("run %s stopped", run_id)
            await self._fail(run_id, reason)
        finally:
            self.handed_over.discard(run_id)

    async def _drive(self, run: s.RunSummary, url: str) -> None:
        run_id = str(run.id)
        await self.recorder.set_run_status(run_id, RunStatus.RUNNING.value)
        payload: dict[str, Any] = {"repository": url, "commit": run.commit_sha, "branch": run.branch,
                                   "tag": run.tag}
        job = Job(id=attempt_job_id(f"discovery-{run_id}", run.attempt), type="discovery", run_id=run_id,
                  payload=payload)
        result = await self.dispatcher.dispatch(job, DISCOVERY_TIMEOUT)
        if result.status is not JobStatus.SUCCESS:
            await self._fail(run_id, f"discovery: {result.error or 'failed'}")
            return
        document = DiscoveryDocument.model_validate(result.output)
        recorded = still_to_run(await self.recorder.record_plan(run_id, document.run_plan().model_dump(mode="json")))
        source = ArtifactSource(repository=url, commit=run.commit_sha, branch=run.branch, tag=run.tag,
                                identity=run.repository)
        cancel = asyncio.Event()
        watching = asyncio.create_task(self._watch(run_id, cancel))
        self.handed_over.add(run_id)
        stage = releasing_stage(document, source, self.publish, run.triggered_by, run.attempt)
        if self.after_artifacts is not None:
            stage = dataclasses.replace(stage, then=self.after_artifacts(run, document, url))
        try:
            await self.orchestrator.execute(
                run_id, recorded, SourceRef(repository=url, commit=run.commit_sha), cancel=cancel,
                artifacts=stage,
            )
        finally:
            watching.cancel()

    async def _watch(self, run_id: str, cancel: asyncio.Event) -> None:
        if self.status_of is None:
            return
        while not cancel.is_set():
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                if await self.status_of(run_id) == RunStatus.CANCELLED.value:
                    log.info("run %s was cancelled: stopping it", run_id)
                    cancel.set()
            except ForgeError as error:  # the API is away for a moment: look again
                log.warning("run %s: cannot read its status: %s", run_id, error)

    async def _fail(self, run_id: str, reason: str, status: RunStatus = RunStatus.FAILED) -> None:
        try:
            await self.recorder.set_run_status(run_id, status.value, error=reason)
        except ForgeError as error:
            if error.code != CONFLICT:
                log.warning("run %s: cannot record %s (%s): %s", run_id, status.value, reason, error)
