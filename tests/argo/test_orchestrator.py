"""The Argo orchestrator against the stand-in Argo Server: submission, status sync, cancellation
(stop, then terminate), a Workflow deleted behind the platform's back, an unreachable server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from jobs_support import RecordingRecorder
from pydantic import SecretStr

from forge_core.adapters.argo.client import ArgoClient
from forge_core.adapters.argo.orchestrator import ArgoOrchestrator
from forge_core.adapters.argo.workflow import CLOSE, DISCOVERY, task_names, workflow_name
from forge_core.domain.jobs import SourceRef
from forge_core.domain.models import RunStatus
from forge_core.ports.orchestrator import RunOutcome
from forge_core.services.orchestrator import parse_plan
from forge_core.settings.orchestrator import ArgoSettings
from forge_core.testing.argo import ArgoServerStandIn
from forge_core.testing.registry import free_port

SOURCE = SourceRef(repository="file:///srv/git/monorepo.git", commit="b" * 40)
RUN = "run-1"
NAME = workflow_name(RUN)


def nodes(**phases: str) -> dict[str, Any]:
    """A Workflow's status.nodes: one Pod node per DAG task (by name) in the given phase."""
    found = {f"{NAME}-{i}": {"id": f"{NAME}-{i}", "displayName": name, "type": "Pod", "phase": phase,
                             "message": "exit code 2" if phase == "Failed" else "",
                             "finishedAt": f"2026-12-01T10:0{i}:00Z"}
             for i, (name, phase) in enumerate(phases.items())}
    found[NAME] = {"id": NAME, "displayName": NAME, "type": "DAG", "phase": "Running"}
    return found


def run(
    settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any], *,
    controller: Callable[[], None] | None = None, cancel_after_submit: bool = False, stop_grace: float = 60.0,
) -> RunOutcome:
    async def scenario() -> RunOutcome:
        client = ArgoClient(settings)
        try:
            orchestrator = ArgoOrchestrator(client, recorder, settings, stop_grace=stop_grace)
            cancel = asyncio.Event()
            if cancel_after_submit:
                cancel.set()
            return await asyncio.wait_for(orchestrator.execute(RUN, plan, SOURCE, cancel=cancel), 30)
        finally:
            await client.close()

    playing = threading.Thread(target=controller, daemon=True) if controller else None
    if playing:
        playing.start()
    try:
        return asyncio.run(scenario())
    finally:
        if playing:
            playing.join(10)


def submitted(argo: ArgoServerStandIn) -> None:
    argo.wait_for(lambda: ("forge", NAME) in argo.workflows)


def runs(recorder: RecordingRecorder) -> list[tuple[Any, ...]]:
    return [call[2:] for call in recorder.calls if call[0] == "run"]


def test_a_succeeding_workflow_closes_the_run_and_its_phases(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    names = task_names(parse_plan(plan))

    def controller() -> None:
        submitted(argo)
        argo.set_status(NAME, {"phase": "Running", "nodes": nodes(**{DISCOVERY: "Succeeded", names["a"]: "Running"})})
        done = {DISCOVERY: "Succeeded", **{names[t]: "Succeeded" for t in "abc"}, names["l"]: "Failed",
                CLOSE: "Succeeded"}
        argo.set_status(NAME, {"phase": "Succeeded", "nodes": nodes(**done)})

    outcome = run(argo_settings, recorder, plan, controller=controller)

    assert outcome == RunOutcome(RunStatus.SUCCESS)
    assert runs(recorder) == [("running", None), ("success", None)]
    assert recorder.statuses("phase", "test") == ["success"]
    assert recorder.statuses("phase", "lint") == ["failed"]
    assert recorder.statuses("phase", "build") == ["success"]
    assert [c for c in argo.calls if c[0] == "POST"] == [("POST", "/api/v1/workflows/forge")]
    stored = argo.workflow(NAME)
    assert stored is not None and stored["metadata"]["labels"]["forge.projectcatalyst.io/run-id"] == RUN


def test_a_failed_task_fails_the_run_naming_it_and_later_tasks_are_skipped(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    names = task_names(parse_plan(plan))

    def controller() -> None:
        submitted(argo)
        failed = {DISCOVERY: "Succeeded", names["a"]: "Failed", names["b"]: "Succeeded", names["l"]: "Succeeded",
                  names["c"]: "Omitted"}
        argo.set_status(NAME, {"phase": "Failed", "message": "child failed", "nodes": nodes(**failed)})

    outcome = run(argo_settings, recorder, plan, controller=controller)

    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "task api:a failed: exit code 2" and outcome.failed_task == "api:a"
    assert runs(recorder)[-1] == ("failed", "task api:a failed: exit code 2")
    assert recorder.statuses("phase", "test") == ["failed"]
    assert recorder.statuses("phase", "build") == ["skipped"]
    assert recorder.statuses("task", "c") == ["skipped"]


def test_a_workflow_deleted_behind_the_platforms_back_fails_the_run(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    def controller() -> None:
        submitted(argo)
        argo.set_status(NAME, {"phase": "Running", "nodes": nodes(**{DISCOVERY: "Running"})})
        with argo.changed:
            del argo.workflows[("forge", NAME)]

    outcome = run(argo_settings, recorder, plan, controller=controller)

    assert outcome == RunOutcome(RunStatus.FAILED, f"Workflow {NAME} was deleted while the run was open")
    assert runs(recorder)[-1] == ("failed", f"Workflow {NAME} was deleted while the run was open")
    assert recorder.statuses("phase", "build") == ["skipped"]


def test_an_unreachable_argo_server_fails_the_run_with_the_reason_before_anything_started(
    argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    settings = argo_settings.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})

    outcome = run(settings, recorder, plan)

    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith(f"cannot submit Workflow {NAME}: {settings.url}/api/v1/workflows/forge: ")
    assert "the Argo Server is unreachable: ConnectError" in outcome.error
    assert runs(recorder) == [("failed", outcome.error)]  # never marked running
    assert [c for c in recorder.calls if c[0] != "run"] == []


def test_a_refused_token_fails_the_run_and_the_token_is_not_in_the_error(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    settings = argo_settings.model_copy(update={"token": SecretStr("wrong-secret-token")})

    outcome = run(settings, recorder, plan)

    assert outcome.status is RunStatus.FAILED and outcome.error is not None
    assert "answered 401: token not valid" in outcome.error
    assert "wrong-secret-token" not in outcome.error
    assert argo.workflows == {}


def test_a_run_handed_over_twice_follows_the_one_workflow(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    def controller() -> None:
        # both submissions answered (a call is logged as it arrives, the Workflow kept as it is answered)
        argo.wait_for(lambda: sum(1 for c in argo.calls if c[0] == "POST") == 2 and ("forge", NAME) in argo.workflows)
        argo.set_status(NAME, {"phase": "Succeeded", "nodes": nodes(**{DISCOVERY: "Succeeded"})})

    async def twice() -> list[RunOutcome]:
        clients = [ArgoClient(argo_settings), ArgoClient(argo_settings)]
        try:
            return list(await asyncio.gather(*(
                ArgoOrchestrator(c, recorder, argo_settings).execute(RUN, plan, SOURCE) for c in clients)))
        finally:
            for c in clients:
                await c.close()

    playing = threading.Thread(target=controller, daemon=True)
    playing.start()
    outcomes = asyncio.run(asyncio.wait_for(twice(), 30))
    playing.join(5)

    assert [o.status for o in outcomes] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert list(argo.workflows) == [("forge", NAME)]


def test_cancelling_stops_the_workflow_and_the_run_is_cancelled(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    names = task_names(parse_plan(plan))

    def controller() -> None:
        submitted(argo)
        argo.set_status(NAME, {"phase": "Running", "nodes": nodes(**{DISCOVERY: "Succeeded", names["a"]: "Pending"})})
        argo.wait_for(lambda: (argo.workflows[("forge", NAME)]["spec"].get("shutdown") == "Stop"))
        stopped = {DISCOVERY: "Succeeded", names["a"]: "Failed", names["b"]: "Omitted"}
        argo.set_status(NAME, {"phase": "Failed", "message": "Stopped with strategy 'Stop'", "nodes": nodes(**stopped)})

    outcome = run(argo_settings, recorder, plan, controller=controller, cancel_after_submit=True)

    assert outcome == RunOutcome(RunStatus.CANCELLED, "cancelled")
    assert ("PUT", f"/api/v1/workflows/forge/{NAME}/stop") in argo.calls
    assert ("PUT", f"/api/v1/workflows/forge/{NAME}/terminate") not in argo.calls
    assert runs(recorder)[-1] == ("cancelled", "cancelled")
    assert recorder.statuses("task", "b") == ["skipped"]  # pending when cancelled: never ran
    assert recorder.statuses("phase", "build") == ["skipped"]


def test_a_workflow_that_ignores_stop_is_terminated(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    def controller() -> None:
        submitted(argo)
        argo.set_status(NAME, {"phase": "Running", "nodes": nodes(**{DISCOVERY: "Running"})})
        argo.wait_for(lambda: (argo.workflows[("forge", NAME)]["spec"].get("shutdown") == "Terminate"))
        argo.set_status(NAME, {"phase": "Failed", "nodes": nodes(**{DISCOVERY: "Failed"})})

    outcome = run(argo_settings, recorder, plan, controller=controller, cancel_after_submit=True, stop_grace=0.2)

    assert outcome.status is RunStatus.CANCELLED
    puts = [c[1].rsplit("/", 1)[1] for c in argo.calls if c[0] == "PUT"]
    assert puts == ["stop", "terminate"]


def test_a_failed_release_task_fails_the_run_with_the_stages_reason(
    argo: ArgoServerStandIn, argo_settings: ArgoSettings, recorder: RecordingRecorder, plan: dict[str, Any],
) -> None:
    names = task_names(parse_plan(plan))
    reason = "release api: the release job failed: the renderer refused resource 0"

    def controller() -> None:
        submitted(argo)
        done = nodes(**{DISCOVERY: "Succeeded", **dict.fromkeys(names.values(), "Succeeded"),
                        "release-api": "Failed", "deploy": "Omitted", CLOSE: "Omitted"})
        release = next(n for n in done.values() if n["displayName"] == "release-api")
        release["outputs"] = {"parameters": [{"name": "result", "value": json.dumps(
            {"job_id": "release-run-1", "status": "failed", "output": {}, "error": reason})}]}
        argo.set_status(NAME, {"phase": "Failed", "message": "child failed", "nodes": done})

    outcome = run(argo_settings, recorder, plan, controller=controller)

    assert outcome == RunOutcome(RunStatus.FAILED, reason)
    assert runs(recorder)[-1] == ("failed", reason)
