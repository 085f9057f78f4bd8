"""Pipeline runs, and the internal endpoints through which workers record their progress."""

from __future__ import annotations

from enum import Enum
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response

from forge_core.api.deps import App, Paging, Reader, Runner, Runs, Worker, json_of
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.api.scope import OWN_REPOSITORY
from forge_core.domain.models import RunStatus
from forge_core.domain.run_plan import RunPlan
from forge_core.services import schemas as s

router = APIRouter(prefix="/v1", tags=["runs"], responses=ERROR_RESPONSES)


@router.post("/runs", status_code=201, response_model=s.Run)
async def create_run(body: s.RunCreate, app: App, who: Runner) -> Response:
    """Start a pipeline run for a commit (one per repository and commit: a second is a 409)."""
    run = await app.platform.create_run(body, who.subject)
    if app.sender:
        app.sender.wake()
    if app.starter:
        app.starter.wake()
    return json_of(run, 201)


@router.get("/runs", response_model=s.RunList, openapi_extra=OWN_REPOSITORY)
async def list_runs(
    runs: Runs,
    who: Reader,
    paging: Paging,
    repository: Annotated[str | None, Query(max_length=255)] = None,
    branch: Annotated[str | None, Query(max_length=255)] = None,
    status: RunStatus | None = None,
) -> s.RunList:
    """Runs, newest first; a repository's token gets that repository's runs only."""
    if who.repository is not None:  # a repository named in the query was checked to be this one
        repository = who.repository
    return await runs.list_runs(paging, repository=repository, branch=branch, status=status)


@router.get("/runs/{run_id}", response_model=s.Run)
async def get_run(
    run_id: UUID, app: App, who: Reader, attempt: Annotated[int | None, Query(ge=1, le=100000)] = None
) -> Response:
    """A run with its phases, tasks and steps, on its current attempt (``attempts`` lists the
    earlier ones) or as an earlier ``attempt`` ended. A run whose driver stopped renewing its
    lease is closed failed first."""
    return json_of(await app.platform.get_run(run_id, attempt))


@router.post("/runs/{run_id}/rerun", status_code=201, response_model=s.Run)
async def rerun(run_id: UUID, body: s.RerunCreate, app: App, who: Runner) -> Response:
    """Re-run a finished run as its next attempt (pending, for a driver to take): only the tasks
    that did not succeed (``only_failed``, the default; the others' results are carried over) or
    every task. Earlier attempts keep their phases, tasks, steps and logs. One attempt at a time
    per commit: 409 while the run is pending or running."""
    run = await app.platform.rerun(run_id, body, who.subject)
    if app.sender:
        app.sender.wake()
    return json_of(run, 201)


@router.get("/runs/{run_id}/progress", response_model=s.RunChanges)
async def run_progress(
    run_id: UUID, runs: Runs, who: Reader, since: Annotated[int, Query(ge=0, le=2**62)] = 0
) -> s.RunChanges:
    """What changed in a run after cursor ``since`` (0: everything): the run's progress, and only
    the phases, tasks, steps and artifact records that changed, with the cursor to ask from next.
    A live view polls this instead of the whole run: each answer costs what changed."""
    return await runs.run_changes(run_id, since)


@router.delete("/runs/{run_id}", status_code=204, response_class=Response)
async def cancel_run(run_id: UUID, app: App, runs: Runs, who: Runner) -> Response:
    """Cancel a run that has not finished; its open phases, tasks and steps are cancelled too, and
    the workers running its jobs are told over the bus to stop them."""
    await app.platform.cancel_run(run_id, who.subject)
    await app.announce_cancel(str(run_id))
    return Response(status_code=204)


INTERNAL: list[str | Enum] = ["internal"]


@router.post("/runs/{run_id}/plan", status_code=201, response_model=s.RecordedPlan, tags=INTERNAL)
async def record_plan(run_id: UUID, body: RunPlan, runs: Runs, who: Worker) -> s.RecordedPlan:
    """Store the plan discovery made (phases → tasks → steps, every step as written in CUE, and
    the artifacts); returns it with the ids of its phases, tasks and steps."""
    s.check_plan(body)
    return await runs.record_plan(run_id, body, who.subject)


@router.put("/runs/{run_id}/status", response_model=s.RunSummary, tags=INTERNAL)
async def set_run_status(
    run_id: UUID, body: s.RunStatusUpdate, app: App, who: Worker
) -> s.RunSummary:
    run = await app.platform.set_run_status(run_id, body, who.subject)
    if app.sender:
        app.sender.wake()
    return run


@router.put("/runs/{run_id}/lease", response_model=s.RunSummary, tags=INTERNAL)
async def renew_lease(run_id: UUID, body: s.LeaseRenewal, app: App, who: Worker) -> s.RunSummary:
    """The driver of a run (``forge run``, ``forge server``: host/pid/kind) holds its lease
    ``ttl_seconds`` more. A run whose lease lapses is closed failed ("its driver stopped"). 409 when
    the run has finished (its driver should stop) or another driver holds the lease."""
    return await app.platform.renew_lease(run_id, body, who.subject)


@router.put("/phases/{phase_id}/status", status_code=204, response_class=Response, tags=INTERNAL)
async def set_phase_status(
    phase_id: UUID, body: s.PhaseStatusUpdate, runs: Runs, who: Worker
) -> Response:
    await runs.set_phase_status(phase_id, body, who.subject)
    return Response(status_code=204)


@router.put("/tasks/{task_id}/status", status_code=204, response_class=Response, tags=INTERNAL)
async def set_task_status(
    task_id: UUID, body: s.TaskStatusUpdate, runs: Runs, who: Worker
) -> Response:
    await runs.set_task_status(task_id, body, who.subject)
    return Response(status_code=204)


@router.put("/steps/{step_id}/status", status_code=204, response_class=Response, tags=INTERNAL)
async def set_step_status(
    step_id: UUID, body: s.StepStatusUpdate, runs: Runs, who: Worker
) -> Response:
    await runs.set_step_status(step_id, body, who.subject)
    return Response(status_code=204)


Segment = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


@router.put(
    "/runs/{run_id}/artifacts/{project}/{artifact}", response_model=s.ArtifactRecord, tags=INTERNAL
)
async def record_artifact(
    run_id: UUID, project: Segment, artifact: Segment, body: s.ArtifactRecordUpdate, runs: Runs, who: Worker
) -> s.ArtifactRecord:
    """Record what the artifact job did with one planned artifact: its status, the produced
    digest, the tracking image, the primary published location and every target's outcome. The
    whole record is replaced (idempotent: a redelivered report changes nothing). The release job
    turns a successful record into the release's artifact (``ReleaseCreate.artifacts``)."""
    return await runs.record_artifact(run_id, project, artifact, body, who.subject)


@router.get("/runs/{run_id}/artifacts/{project}/{artifact}", response_model=s.ArtifactRecord)
async def get_artifact_record(
    run_id: UUID, project: Segment, artifact: Segment, runs: Runs, who: Reader
) -> s.ArtifactRecord:
    """The record of one artifact of a run (404 until the artifact job reported it)."""
    return await runs.get_artifact_record(run_id, project, artifact)
