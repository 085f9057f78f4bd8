"""The embedded orchestrator driving dispatchers over the real NATS, with an in-process ci worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder
from pydantic import SecretStr

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.bus.local_server import LocalNatsServer
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ConfigurationError
from forge_core.domain.jobs import SourceRef
from forge_core.domain.models import RunStatus
from forge_core.ports.orchestrator import RunOutcome
from forge_core.services.orchestrator import EmbeddedOrchestrator
from forge_core.settings import Settings
from forge_core.worker.runner import Worker

from .conftest import running

WAIT_FOR_PEER = 'touch "$MARK/{me}"; for i in $(seq 100); do [ -f "$MARK/{peer}" ] && exit 0; sleep 0.05; done; exit 1'


def task(task_id: str, *targets: str, project: str = "api") -> dict[str, Any]:
    return {
        "id": task_id, "key": f"{project}:{task_id}", "project_name": project, "project_path": project,
        "steps": [{"id": f"{task_id}-s{i}", "name": f"step{i}", "action": "exec", "target": t}
                  for i, t in enumerate(targets)],
    }


def phase(phase_id: str, group: int, *tasks: dict[str, Any], required: bool | None = None) -> dict[str, Any]:
    entry = {"id": phase_id, "name": phase_id, "group_number": group, "tasks": list(tasks)}
    return entry if required is None else {**entry, "required": required}


def orchestrate(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, recorder: RecordingRecorder,
    plan: dict[str, Any], source: SourceRef, *, mark: Path, cancel_when: Callable[[], bool] | None = None,
    task_timeout: float = 30,
) -> RunOutcome:
    async def scenario() -> RunOutcome:
        async with running(make_worker("ci", concurrency=4)):
            client = await connect(settings.nats)
            try:
                orchestrator = EmbeddedOrchestrator(
                    NatsDispatcher(client, settings.nats, storage), recorder,
                    max_parallel=4, task_timeout=task_timeout, env={"MARK": str(mark)},
                )
                cancel = asyncio.Event()
                run = asyncio.create_task(orchestrator.execute("run-o", plan, source, cancel=cancel))
                while cancel_when is not None and not run.done():
                    if cancel_when():
                        cancel.set()
                        break
                    await asyncio.sleep(0.05)
                return await asyncio.wait_for(run, 60)
            finally:
                await client.close()

    return asyncio.run(scenario())


def test_groups_run_in_order_tasks_in_parallel_and_the_first_failure_stops_the_run(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    plan = {"phases": [
        phase("test", 1, task("a", WAIT_FOR_PEER.format(me="a", peer="b")),  # passes only if b runs at once
              task("b", WAIT_FOR_PEER.format(me="b", peer="a"), project="web")),
        phase("build", 2, task("c", "echo building; exit 2")),
        phase("deploy", 3, task("d", "echo never")),
    ]}
    source = SourceRef(repository=str(repo), commit=commit)
    outcome = orchestrate(make_worker, settings, storage, recorder, plan, source, mark=tmp_path)
    error = "task api:c failed: step 'step0' failed: exited with code 2"
    assert outcome == RunOutcome(RunStatus.FAILED, error, "api:c")
    calls = recorder.calls
    assert calls[0] == ("run", "run-o", "running", None)
    assert calls[-1] == ("run", "run-o", "failed", outcome.error)
    assert ("phase", "test", "success") in calls and ("phase", "build", "failed") in calls
    assert ("phase", "deploy", "skipped") in calls
    assert ("task", "d", "skipped", None) in calls and ("step", "d-s0", "skipped", None, None) in calls
    # group 2 starts only after group 1 finished
    assert calls.index(("task", "c", "running", None)) > max(
        calls.index(("task", "a", "success", None)), calls.index(("task", "b", "success", None))
    )


def test_a_phase_that_is_not_required_fails_without_stopping_or_failing_the_run(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    plan = {"phases": [
        phase("lint", 1, task("style", "echo untidy; exit 1"), task("docs", "true", project="web"), required=False),
        phase("test", 1, task("unit", "sleep 0.5; true"), required=True),
        phase("build", 2, task("compile", "true"), required=True),
    ]}
    source = SourceRef(repository=str(repo), commit=commit)
    outcome = orchestrate(make_worker, settings, storage, recorder, plan, source, mark=tmp_path)
    assert outcome == RunOutcome(RunStatus.SUCCESS, failed_phases=("lint",))
    calls = recorder.calls
    assert ("phase", "lint", "failed") in calls
    assert ("task", "docs", "success", None) in calls  # its other task was not stopped
    assert ("phase", "test", "success") in calls and ("task", "unit", "success", None) in calls
    assert ("phase", "build", "success") in calls  # the next group ran
    assert calls[-1] == ("run", "run-o", "success", None)


def test_a_required_phase_still_stops_the_run_after_one_that_is_not(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    plan = {"phases": [
        phase("lint", 1, task("style", "exit 1"), required=False),
        phase("test", 2, task("unit", "exit 3"), task("slow", "sleep 5", project="web"), required=True),
        phase("build", 3, task("compile", "true"), required=False),
    ]}
    source = SourceRef(repository=str(repo), commit=commit)
    outcome = orchestrate(make_worker, settings, storage, recorder, plan, source, mark=tmp_path)
    assert outcome == RunOutcome(
        RunStatus.FAILED, "task api:unit failed: step 'step0' failed: exited with code 3", "api:unit",
        failed_phases=("lint",),
    )
    assert ("task", "slow", "cancelled", "run stopped") in recorder.calls
    assert ("phase", "build", "skipped") in recorder.calls
    # the cancelled task's worker may still report its step after the run is closed
    assert [c for c in recorder.calls if c[0] == "run"][-1] == ("run", "run-o", "failed", outcome.error)


def test_cancelling_stops_the_run_and_skips_later_groups(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    plan = {"phases": [phase("test", 1, task("slow", "sleep 3")), phase("build", 2, task("later", "true"))]}
    outcome = orchestrate(
        make_worker, settings, storage, recorder, plan, SourceRef(repository=str(repo), commit=commit), mark=tmp_path,
        cancel_when=lambda: any(call[:3] == ("step", "slow-s0", "running") for call in recorder.calls),
    )
    assert outcome.status is RunStatus.CANCELLED
    assert ("task", "slow", "cancelled", "run stopped") in recorder.calls
    assert ("phase", "test", "cancelled") in recorder.calls
    assert ("task", "later", "skipped", None) in recorder.calls
    assert ("run", "run-o", "cancelled", "cancelled") in recorder.calls


def test_a_task_nobody_answers_fails_the_run_with_the_reason(
    settings: Settings, storage: FsspecStore, recorder: RecordingRecorder, tmp_path: Path
) -> None:
    plan = {"phases": [phase("test", 1, task("lost", "true"))]}

    async def scenario() -> RunOutcome:
        client = await connect(settings.nats)
        try:
            dispatcher = NatsDispatcher(client, settings.nats, storage)
            orchestrator = EmbeddedOrchestrator(dispatcher, recorder, task_timeout=0.5)
            return await orchestrator.execute("run-o", plan, SourceRef(repository="x", commit="y"))
        finally:
            await client.close()

    outcome = asyncio.run(scenario())
    assert outcome.status is RunStatus.FAILED and "no reply for ci job ci-lost within 0.5 s" in (outcome.error or "")
    assert recorder.calls[1] == ("phase", "test", "running")
    assert recorder.calls[2][:3] == ("task", "lost", "failed")


def test_an_invalid_plan_is_refused_before_anything_runs(settings: Settings, recorder: RecordingRecorder) -> None:
    orchestrator = EmbeddedOrchestrator(None, recorder)  # type: ignore[arg-type]
    plan = {"phases": [{"id": "p", "name": "p"}]}
    with pytest.raises(ConfigurationError, match=r"plan\.phases\.0\.group_number"):
        asyncio.run(orchestrator.execute("r", plan, SourceRef(repository="x", commit="y")))
    assert recorder.calls == []


def test_a_restart_of_nats_during_a_run_never_leaves_it_running(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    server = LocalNatsServer(tmp_path / "nats")
    server.start()
    settings.nats.url = server.url
    settings.nats.token = SecretStr(server.token)
    repo, commit = monorepo
    plan = {"phases": [
        phase("test", 1, task("a", "sleep 1"), task("b", "sleep 1", project="web")),
        phase("build", 2, task("c", "echo built")),
    ]}
    try:
        async def restart_soon() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.restart)

        async def scenario() -> RunOutcome:
            async with running(make_worker("ci", concurrency=2)):
                client = await connect(settings.nats)
                try:
                    orchestrator = EmbeddedOrchestrator(
                        NatsDispatcher(client, settings.nats, storage), recorder, task_timeout=20
                    )
                    restart = asyncio.create_task(restart_soon())
                    outcome = await asyncio.wait_for(
                        orchestrator.execute("run-o", plan, SourceRef(repository=str(repo), commit=commit)), 60
                    )
                    await restart
                    return outcome
                finally:
                    await client.close()

        outcome = asyncio.run(scenario())
    finally:
        server.stop()
    print("restart outcome:", outcome)
    assert outcome.status in (RunStatus.SUCCESS, RunStatus.FAILED)
    if outcome.status is RunStatus.FAILED:
        assert outcome.error  # a clear reason
    assert recorder.calls[-1][:3] == ("run", "run-o", outcome.status.value)


def test_the_embedded_bus_runs_a_plan_on_a_private_nats_server(
    settings: Settings, host: Any, storage: FsspecStore, recorder: RecordingRecorder,
    monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    """No NATS URL configured: a private nats-server, in-process workers, the orchestrator."""
    from forge_core.worker.embedded import embedded_jobs

    settings.nats.url = None
    repo, commit = monorepo
    plan = {"phases": [phase("test", 1, task("a", "cat hello.txt")), phase("build", 2, task("b", "ls"))]}

    async def scenario() -> RunOutcome:
        async with embedded_jobs(settings, host, recorder, storage, state_dir=tmp_path / "state") as dispatcher:
            orchestrator = EmbeddedOrchestrator(dispatcher, recorder)
            return await orchestrator.execute("run-e", plan, SourceRef(repository=str(repo), commit=commit))

    assert asyncio.run(scenario()) == RunOutcome(RunStatus.SUCCESS)
    assert recorder.calls[-1] == ("run", "run-e", "success", None)
    assert storage.read_bytes("logs/run-e/a/a-s0.log") == b"hello from api\n"
    assert (tmp_path / "state" / "nats" / "jetstream").is_dir()
