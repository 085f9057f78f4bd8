"""The Argo orchestrator: one Workflow per run on an Argo Server, its status synced into the run.

``execute`` renders the run's Workflow, submits it (a Workflow of that name already there is the
same run handed over again: it is followed, not duplicated), then reads its status until it ends:
the run, its phases and the tasks that never ran are recorded from the Workflow's nodes (the ci
workers record the tasks they ran themselves). Setting ``cancel`` stops the Workflow (running
tasks finish, the exit handler runs); one still running after ``stop_grace`` seconds is
terminated. A Workflow that disappears while the run is open was deleted behind the platform's
back: the run fails saying so. An Argo Server unreachable at submission fails the run with the
reason before anything was created.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from forge_core.adapters.argo.client import ArgoClient, ArgoServerError
from forge_core.adapters.argo.workflow import (
    DEPLOY,
    DISCOVERY,
    artifact_task_name,
    render_workflow,
    task_names,
    workflow_name,
)
from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import SourceRef
from forge_core.domain.models import RunStatus
from forge_core.domain.run_plan import PhasePlan, RunPlan, id_of
from forge_core.ports.orchestrator import ArtifactStage, RunOutcome
from forge_core.ports.platform import CONFLICT, RunRecorder
from forge_core.services.orchestrator import parse_plan
from forge_core.settings.orchestrator import ArgoSettings

log = logging.getLogger("forge.orchestrator.argo")

DONE = {"Succeeded", "Failed", "Error"}


class ArgoOrchestrator:
    """An :class:`~forge_core.ports.orchestrator.Orchestrator` submitting Argo Workflows."""

    def __init__(
        self, client: ArgoClient, recorder: RunRecorder, settings: ArgoSettings, *,
        env: dict[str, str] | None = None, stop_grace: float = 60.0,
    ) -> None:
        self.client, self.recorder, self.settings = client, recorder, settings
        self.env = dict(env or {})
        self.stop_grace = stop_grace

    def render(
        self, run_id: str, plan: dict[str, Any], source: SourceRef, artifacts: ArtifactStage | None = None
    ) -> dict[str, Any]:
        return render_workflow(run_id, parse_plan(plan), source, self.settings, artifacts=artifacts, env=self.env)

    async def execute(
        self,
        run_id: str,
        plan: dict[str, Any],
        source: SourceRef,
        *,
        cancel: asyncio.Event | None = None,
        artifacts: ArtifactStage | None = None,
    ) -> RunOutcome:
        parsed = parse_plan(plan)
        workflow = render_workflow(run_id, parsed, source, self.settings, artifacts=artifacts, env=self.env)
        name = workflow_name(run_id, artifacts.attempt if artifacts is not None else 1)
        cancel = cancel or asyncio.Event()
        try:
            await self.client.submit(workflow)
        except ArgoServerError as error:
            if error.status != 409:  # 409: this run's Workflow exists already; follow it
                failed = RunOutcome(RunStatus.FAILED, f"cannot submit Workflow {name}: {error}")
                return await self._close(run_id, failed)
        await self.recorder.set_run_status(run_id, RunStatus.RUNNING.value)
        outcome = await self._follow(name, cancel, parsed, artifacts)
        await self._sync(parsed, outcome[1])
        return await self._close(run_id, outcome[0])

    async def _follow(
        self, name: str, cancel: asyncio.Event, plan: RunPlan, stage: ArtifactStage | None
    ) -> tuple[RunOutcome, dict[str, Any]]:
        """Read the Workflow until it ends; the outcome and its last seen nodes (by task name)."""
        nodes: dict[str, Any] = {}
        stopped_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                current = await self.client.get(name)
            except ArgoServerError as error:  # a blip: the Workflow runs on without us
                log.warning("reading Workflow %s: %s", name, error)
                current = {}
            if current is None:
                return RunOutcome(RunStatus.FAILED, f"Workflow {name} was deleted while the run was open"), nodes
            status = current.get("status") or {}
            nodes = _by_task(status.get("nodes") or {}) or nodes
            phase = status.get("phase")
            if phase in DONE:
                if stopped_at is not None:
                    return RunOutcome(RunStatus.CANCELLED, "cancelled"), nodes
                if phase == "Succeeded":
                    return RunOutcome(RunStatus.SUCCESS), nodes
                return _failure(name, status, nodes, plan, stage), nodes
            if cancel.is_set() and stopped_at is None:
                stopped_at = loop.time()
                await self._quietly(self.client.stop(name, "run cancelled"))
            elif stopped_at is not None and loop.time() - stopped_at > self.stop_grace:
                await self._quietly(self.client.terminate(name))
                stopped_at = float("-inf")  # terminate once; keep reading until it ends
            if stopped_at is not None or cancel.is_set():
                await asyncio.sleep(self.settings.poll_interval)
                continue
            with contextlib.suppress(TimeoutError):  # wake early on a cancel
                await asyncio.wait_for(cancel.wait(), self.settings.poll_interval)

    async def _quietly(self, call: Any) -> None:
        try:
            await call
        except ArgoServerError as error:
            log.warning("%s", error)

    async def _sync(self, plan: RunPlan, nodes: dict[str, Any]) -> None:
        """Phases from their tasks' nodes; tasks that never ran recorded skipped."""
        names = task_names(plan)
        for group in plan.groups():
            for phase in group:
                status = _phase_status(phase, nodes, names).value
                await self._ignore_conflict(self.recorder.set_phase_status(id_of(phase), status))
                for task in phase.tasks:
                    node = nodes.get(names.get(id_of(task), ""))
                    if node is None or node.get("phase") in {"Omitted", "Skipped", "Pending"}:
                        await self._ignore_conflict(self.recorder.set_task_status(id_of(task), RunStatus.SKIPPED.value))

    async def _ignore_conflict(self, call: Any) -> None:
        try:
            await call
        except ForgeError as error:
            if error.code != CONFLICT:
                raise

    async def _close(self, run_id: str, outcome: RunOutcome) -> RunOutcome:
        try:
            await self.recorder.set_run_status(run_id, outcome.status.value, error=outcome.error)
        except ForgeError as error:  # the Workflow's closing task got there first
            if error.code != CONFLICT:
                raise
        log.info("run %s: %s%s", run_id, outcome.status.value, f" ({outcome.error})" if outcome.error else "")
        return outcome


def _by_task(nodes: dict[str, Any]) -> dict[str, Any]:
    """Nodes by their DAG task name (a retried task's own node, not its attempts ``name(0)``)."""
    found: dict[str, Any] = {}
    for node in nodes.values():
        display = str(node.get("displayName", ""))
        if display and not display.endswith(")") and node.get("type") != "DAG":
            found[display] = node
    return found


def _phase_status(phase: PhasePlan, nodes: dict[str, Any], names: dict[str, str]) -> RunStatus:
    phases = {(nodes.get(names.get(id_of(t), "")) or {}).get("phase") for t in phase.tasks}
    if phases & {"Failed", "Error"}:
        return RunStatus.FAILED
    if phases <= {"Succeeded"}:
        return RunStatus.SUCCESS
    if "Succeeded" in phases or "Running" in phases:
        return RunStatus.CANCELLED
    return RunStatus.SKIPPED


def _job_error(node: dict[str, Any]) -> str:
    """The job's own error from the dispatch's ``result`` output (the JobResult), else the node's."""
    for parameter in (node.get("outputs") or {}).get("parameters") or []:
        if parameter.get("name") == "result" and parameter.get("value"):
            try:
                error = json.loads(parameter["value"]).get("error")
            except (ValueError, AttributeError):
                break
            if error:
                return str(error)
    return str(node.get("message") or "failed")


def _failure(
    name: str, status: dict[str, Any], nodes: dict[str, Any], plan: RunPlan, stage: ArtifactStage | None
) -> RunOutcome:
    """Why the run failed, worded as the embedded orchestrator words it: the first failed task of
    a required phase, else every failed artifact."""
    names = task_names(plan)
    failed = [(str(nodes[names[id_of(t)]].get("finishedAt") or ""), t.key, nodes[names[id_of(t)]])
              for p in plan.phases if p.required for t in p.tasks
              if (nodes.get(names[id_of(t)]) or {}).get("phase") in {"Failed", "Error"}]
    if failed:
        _, key, node = min(failed, key=lambda item: item[0])
        return RunOutcome(RunStatus.FAILED, f"task {key} failed: {_job_error(node)}", key)
    errors = [f"artifact {a.project.name}/{a.spec.name} failed: {_job_error(node)}"
              for a in (stage.artifacts if stage else ())
              if (node := nodes.get(artifact_task_name(a)) or {}).get("phase") in {"Failed", "Error"}]
    if errors:
        return RunOutcome(RunStatus.FAILED, "; ".join(errors))
    stages = [_job_error(node) for task, node in sorted(nodes.items())
              if (task.startswith("release-") or task == DEPLOY) and node.get("phase") in {"Failed", "Error"}]
    if stages:
        return RunOutcome(RunStatus.FAILED, "; ".join(stages))
    discovery = nodes.get(DISCOVERY) or {}
    if discovery.get("phase") in {"Failed", "Error"}:
        return RunOutcome(RunStatus.FAILED, f"discovery: {_job_error(discovery)}")
    return RunOutcome(RunStatus.FAILED, f"Workflow {name} {status.get('phase')}: {status.get('message') or ''}".strip())


__all__ = ["ArgoOrchestrator"]
