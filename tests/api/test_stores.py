"""The database store by aggregate: each module implements exactly its narrow port, and works on
its own over an engine (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forge_core.adapters.db.approvals import SqlApprovals
from forge_core.adapters.db.database import SqlDatabase
from forge_core.adapters.db.deployments import SqlDeployments
from forge_core.adapters.db.engine import create_engine, migrate
from forge_core.adapters.db.outbox import SqlOutbox
from forge_core.adapters.db.releases import SqlReleases
from forge_core.adapters.db.runs import SqlRuns
from forge_core.adapters.db.store import SqlStore
from forge_core.services import rules
from forge_core.services import schemas as s
from forge_core.services import store as ports
from forge_core.settings.database import DatabaseSettings

PAIRS = [
    (ports.RunStore, SqlRuns),
    (ports.ReleaseStore, SqlReleases),
    (ports.DeploymentStore, SqlDeployments),
    (ports.ApprovalStore, SqlApprovals),
    (ports.OutboxStore, SqlOutbox),
    (ports.Reachable, SqlDatabase),
    (ports.Store, SqlStore),
]


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _shape(signature: inspect.Signature) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in signature.parameters.values()]


@pytest.mark.parametrize(("port", "adapter"), PAIRS, ids=[port.__name__ for port, _ in PAIRS])
def test_each_store_implements_its_port_and_no_more(port: type, adapter: type) -> None:
    wanted, offered = _methods(port), _methods(adapter)
    shared = set(_methods(SqlDatabase)) if adapter is not SqlDatabase else set()
    assert set(offered) - shared - {"transaction"} == set(wanted) - shared
    for name, signature in wanted.items():
        assert _shape(offered[name]) == _shape(signature), name


def test_each_aggregate_store_works_on_its_own(database_url: str, tmp_path: Path) -> None:
    repository = f"acme/stores-{uuid.uuid4().hex[:8]}"
    sha = uuid.uuid4().hex + "0" * 8

    async def scenario() -> None:
        engine = create_engine(DatabaseSettings(url=database_url, state_dir=tmp_path))
        await migrate(engine)
        try:
            runs, releases = SqlRuns(engine), SqlReleases(engine)
            deployments, approvals, outbox = SqlDeployments(engine), SqlApprovals(engine), SqlOutbox(engine)
            run = await runs.create_run(
                s.RunCreate(repository=repository, commit_sha=sha, triggered_by="ci"), "alice"
            )
            assert (await runs.find_run(repository, sha)) == run
            due = await outbox.claim_outbox(datetime.now(UTC), 10_000)
            mine = [m for m in due if m.key == rules.commit_status_key(repository, sha)]
            assert [m.payload["state"] for m in mine] == ["pending"]  # written with the run
            release = await releases.create_release(
                s.ReleaseCreate(pipeline_run_id=run.id, repository=repository, project="api", commit_sha=sha),
                "alice",
            )
            assert release.release_number == 1 and [a.alias for a in release.aliases] == ["1"]
            approval = await approvals.create_approval(
                s.ApprovalCreate(release_id=release.id, environment="production", justification="checked"),
                "bob",
            )
            deployed, previous = await deployments.create_deployment(
                s.DeploymentCreate(release_id=release.id, environment="production"),
                "carol",
                approval_required=True,
            )
            assert (deployed.approval_id, deployed.release_number, previous) == (approval.id, 1, None)
            current = await deployments.current_deployment("production", repository, "api")
            assert current.id == deployed.id
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_a_runs_progress_follows_every_status_of_its_parts(database_url: str, tmp_path: Path) -> None:
    """What the console's live page polls: cheap, and it moves whenever the run's tree does."""
    from forge_core.domain.models import RunStatus
    from forge_core.domain.run_plan import RunPlan
    from forge_core.services.errors import NotFound

    async def scenario() -> None:
        engine = create_engine(DatabaseSettings(url=database_url, state_dir=tmp_path))
        await migrate(engine)
        try:
            runs = SqlRuns(engine)
            run = await runs.create_run(s.RunCreate(
                repository=f"acme/state-{uuid.uuid4().hex[:6]}", commit_sha=uuid.uuid4().hex, triggered_by="ci",
            ), "ci")
            seen = [await runs.run_progress(run.id)]
            plan = RunPlan.model_validate({"phases": [{"name": "test", "group_number": 1, "tasks": [
                {"key": "api/test", "project_name": "api", "project_path": "api",
                 "steps": [{"name": "unit", "action": "exec"}]}]}]})
            recorded = await runs.record_plan(run.id, plan, "ci")
            seen.append(await runs.run_progress(run.id))
            task = recorded.phases[0].tasks[0]
            await runs.set_step_status(uuid.UUID(task.steps[0].id), s.StepStatusUpdate(status=RunStatus.RUNNING), "w")
            seen.append(await runs.run_progress(run.id))
            assert await runs.run_progress(run.id) == seen[-1]  # nothing changed: the same progress
            await runs.set_step_status(
                uuid.UUID(task.steps[0].id), s.StepStatusUpdate(status=RunStatus.FAILED, exit_code=2), "w"
            )
            seen.append(await runs.run_progress(run.id))
            await runs.set_task_status(
                uuid.UUID(task.id), s.TaskStatusUpdate(status=RunStatus.FAILED, error="unit failed"), "w"
            )
            seen.append(await runs.run_progress(run.id))
            await runs.set_run_status(run.id, s.RunStatusUpdate(status=RunStatus.FAILED), "w")
            seen.append(await runs.run_progress(run.id))
            assert all(a != b for a, b in itertools.pairwise(seen))
            last = seen[-1]
            step_id, task_id = task.steps[0].id, task.id
            assert (last.run.status, last.tasks[task_id].status, last.tasks[task_id].error) == (
                RunStatus.FAILED, RunStatus.FAILED, "unit failed")
            assert (last.steps[step_id].status, last.steps[step_id].exit_code) == (RunStatus.FAILED, 2)
            assert last.steps[step_id].started_at is not None and list(last.phases) == [recorded.phases[0].id]
            with pytest.raises(NotFound):
                await runs.run_progress(uuid.uuid4())
        finally:
            await engine.dispose()

    asyncio.run(scenario())
