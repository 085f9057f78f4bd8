"""`forge run`'s live progress: read whole once, then only the run's changes
(``GET /v1/runs/{id}/progress?since=``), each applied to its own node — so a refresh costs what
changed, not the size of the run — and the release and deployment stages as nodes of the tree."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from forge_core.adapters.platform_client import PlatformClient
from forge_core.cli.pipeline import RUN_PERMISSIONS, follow
from forge_core.cli.platform import platform_client
from forge_core.cli.progress import RunView, run_tree
from forge_core.cli.stages import Landed, Released, StagesReport
from forge_core.plugin.host import load_plugins
from forge_core.services import schemas as s
from forge_core.settings import Settings, load_settings

TASKS = 120


def plan(tasks: int = TASKS) -> dict[str, Any]:
    return {"phases": [{"name": "test", "group_number": 1, "tasks": [
        {"key": f"test/p{i:03}", "project_name": f"p{i:03}", "project_path": f"p{i:03}",
         "steps": [{"name": "unit", "action": "earthly", "target": "+test"}]} for i in range(tasks)]}]}


class Counting:
    """The platform client, counting what the progress display reads through it."""

    def __init__(self, client: PlatformClient) -> None:
        self.client = client
        self.runs_read = 0
        self.answers: list[s.RunChanges] = []

    async def get_run(self, run_id: str) -> s.Run:
        self.runs_read += 1
        return await self.client.get_run(run_id)

    async def run_changes(self, run_id: str, since: int = 0) -> s.RunChanges:
        answer = await self.client.run_changes(run_id, since)
        self.answers.append(answer)
        return answer


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [k for k in os.environ if k.startswith("FORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORGE_STATE_DIR", str(tmp_path / "state"))
    return load_settings()


def text_of(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def new_run(client: PlatformClient) -> str:
    created = await client.create_run(s.RunCreate(
        repository=f"local/p{uuid.uuid4().hex[:8]}", commit_sha=uuid.uuid4().hex + uuid.uuid4().hex[:8],
        triggered_by="me"))
    return str(created.id)


def test_following_a_run_reads_it_once_then_only_its_changes(settings: Settings) -> None:
    async def scenario() -> None:
        async with platform_client(settings, load_plugins(settings.plugins), permissions=RUN_PERMISSIONS) as client:
            run_id = await new_run(client)
            recorded = await client.record_plan(run_id, plan())
            tasks = [t["id"] for t in recorded["phases"][0]["tasks"]]
            counting = Counting(client)
            shown: list[str] = []
            cancel = asyncio.Event()
            follower = asyncio.create_task(follow(
                counting, run_id, lambda r: shown.append(text_of(r)), cancel, interval=0.01))  # type: ignore[arg-type]
            await until(lambda: bool(shown), "the first view")
            changed = tasks[10:15]
            for task_id in changed:
                await client.set_task_status(task_id, "running")
                await asyncio.sleep(0.03)
            await client.set_task_status(changed[0], "failed", error="unit tests failed")
            await until(lambda: "unit tests failed" in shown[-1], "the failed task in the view")
            before = shown[-1]
            await client.cancel_run(run_id)
            await asyncio.wait_for(cancel.wait(), 10)
            follower.cancel()
            whole = len((await client.get_run(run_id)).model_dump_json())

            assert counting.runs_read == 1  # the plan did not change: the run was read whole once
            incremental = counting.answers[1:]
            sent = [task for answer in incremental for task in answer.tasks]
            # each change came once (the cancellation sends the tasks it cancelled)
            before_cancel = [t for a in incremental if a.run.status is not s.RunStatus.CANCELLED for t in a.tasks]
            assert sorted(set(before_cancel)) == sorted(changed) and len(before_cancel) == len(changed) + 1
            assert len(sent) <= len(before_cancel) + TASKS
            quiet = [a for a in incremental if not a.tasks and a.run.status is not s.RunStatus.CANCELLED]
            assert quiet, "no refresh without changes"
            assert all(len(a.model_dump_json()) < whole / 50 for a in quiet + [
                a for a in incremental if a.tasks and a.run.status is not s.RunStatus.CANCELLED])
            assert "✗ failed  test/p010" in before and "▶ running  test/p011" in before
            assert "· pending  test/p099" in before
            assert "⊘ cancelled  test/p099" in shown[-1]

    asyncio.run(scenario())


def test_a_plan_recorded_while_following_reads_the_run_once_more(settings: Settings) -> None:
    async def scenario() -> None:
        async with platform_client(settings, load_plugins(settings.plugins), permissions=RUN_PERMISSIONS) as client:
            run_id = await new_run(client)
            counting = Counting(client)
            shown: list[str] = []
            cancel = asyncio.Event()
            follower = asyncio.create_task(follow(
                counting, run_id, lambda r: shown.append(text_of(r)), cancel, interval=0.01))  # type: ignore[arg-type]
            await until(lambda: bool(shown), "the first view")
            assert counting.runs_read == 1 and "group 1" not in shown[-1]
            await client.record_plan(run_id, plan(3))
            await until(lambda: "test/p002" in shown[-1], "the plan in the view")
            await client.set_task_status((await client.get_run(run_id)).phases[0].tasks[1].id, "running")
            await until(lambda: "▶ running  test/p001" in shown[-1], "the change after the plan")
            follower.cancel()
            assert counting.runs_read == 2

    asyncio.run(scenario())


def run_of(tasks: int) -> s.Run:
    now = s.RunStatus.PENDING

    phase_tasks = [s.Task(id=f"t{i}", key=f"test/p{i}", project_name=f"p{i}", project_path=f"p{i}", status=now,
                          error=None, started_at=None, completed_at=None,
                          steps=(s.Step(id=f"s{i}", name="unit", action="earthly", target="+test", status=now,
                                        exit_code=None, logs_s3_key=None, started_at=None, completed_at=None),))
                   for i in range(tasks)]
    return s.Run(id=uuid.uuid4(), repository="local/acme", commit_sha="a" * 40, branch="main", tag=None,
                 status=s.RunStatus.RUNNING, triggered_by="me", trigger_type=s.TriggerType.MANUAL, error=None,
                 created_at=datetime.now(UTC), started_at=None, completed_at=None,
                 phases=[s.Phase(id="p", name="test", group_number=1, status=now, started_at=None, completed_at=None,
                                 tasks=tuple(phase_tasks))])


def test_applying_changes_redraws_only_the_changed_nodes() -> None:
    view = RunView(run_of(1000))
    built = view.redrawn
    running = s.Progress(status=s.RunStatus.RUNNING)
    view.apply(s.RunChanges(cursor=5, run=running, phases={}, tasks={"t7": running}, steps={"s7": running}))
    assert view.redrawn - built == 2 and view.cursor == 5
    assert "▶ running  test/p7" in text_of(view.renderable())
    assert view.knows(s.RunChanges(cursor=6, run=running, phases={}, tasks={"t999": running}, steps={}))
    assert not view.knows(s.RunChanges(cursor=6, run=running, phases={}, tasks={"t1000": running}, steps={}))


def test_the_release_and_deployment_stages_are_nodes_of_the_tree() -> None:
    stages = StagesReport()
    view = RunView(run_of(1), stages)
    assert "releases" not in text_of(view.renderable())
    stages.releasing("api")
    view.apply(s.RunChanges(cursor=1, run=s.Progress(status=s.RunStatus.RUNNING), phases={}, tasks={}, steps={}))
    assert "▶ running  api  release job running" in text_of(view.renderable())

    image = "oci-layout:/state/oci/acme/api:" + "a" * 40 + "@sha256:" + "b" * 64
    stages.released(Released(project="api", number=3, aliases=("3",), image=image, release_id=str(uuid.uuid4())))
    deployment = s.Deployment.model_validate({
        "id": str(uuid.uuid4()), "release_id": str(uuid.uuid4()), "release_number": 3, "repository": "local/acme",
        "project": "api", "environment": "dev", "status": "pending", "deployed_at": "2026-12-01T10:00:00Z",
        "deployed_by": "me", "gitops_commit_sha": None, "approval_id": None})
    stages.deploying("dev", [deployment])
    view.apply(s.RunChanges(cursor=2, run=s.Progress(status=s.RunStatus.RUNNING), phases={}, tasks={}, steps={}))
    shown = text_of(view.renderable())
    assert f"✓ success  api  release 3  {image}" in shown
    assert "deployments" in shown and "· pending  api  release 3 → pending" in shown

    path = "environments/dev/acme-api/release.yaml"
    stages.deployed(Landed(environment="dev", gitops_commit="c" * 40, repository="/state/gitops.git", branch="main",
                           paths=(path,), deployments=(str(deployment.id),)), [deployment])
    final = text_of(run_tree(view.run, stages))
    assert f"✓ active  api  release 3 → active  {path}  (GitOps commit cccccccccccc)" in final
