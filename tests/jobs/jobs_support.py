"""Shared by the job tests and the worker processes they start: a recording RunRecorder and a
test plugin whose ``artifact`` handler does what the job's payload asks."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from forge_core.sdk import Job, JobContext, JobHandlerRegistrar, JobResult, JobStatus, hookimpl

HANDLER_TYPE = "artifact"


class RecordingRecorder:
    """The RunRecorder port, recording every call (and appending it to ``path`` when given, so a
    test can read what a worker process recorded)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)
            if self.path is not None:
                with open(self.path, "a") as handle:
                    handle.write(json.dumps(call) + "\n")

    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        self._record("plan", run_id)
        return plan

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        self._record("run", run_id, status, error)

    async def set_phase_status(self, phase_id: str, status: str) -> None:
        self._record("phase", phase_id, status)

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        self._record("task", task_id, status, error)

    async def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None:
        self._record("step", step_id, status, exit_code, logs_key)

    async def record_artifact(
        self, run_id: str, project: str, artifact: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        self._record("artifact", f"{project}/{artifact}", record["status"], record.get("error"))
        return record

    async def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None:
        return None

    def statuses(self, kind: str, entity_id: str) -> list[str]:
        return [c[2] for c in read_calls(self) if c[0] == kind and c[1] == entity_id]


def read_calls(recorder: RecordingRecorder) -> list[list[Any]]:
    if recorder.path is not None and recorder.path.exists():
        return [json.loads(line) for line in recorder.path.read_text().splitlines()]
    return [list(c) for c in recorder.calls]


class ScriptedHandler:
    """Does what ``job.payload["do"]`` says: ``ok``, ``sleep``, ``raise``, ``crash``, ``big``.

    ``marker`` (a file) gets a line ``start <job>`` when a run begins and ``done <job>`` when it ends.
    """

    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        payload = job.payload
        marker = Path(payload["marker"]) if "marker" in payload else None
        if marker is not None:
            with open(marker, "a") as handle:
                handle.write(f"start {job.id}\n")
        action = payload.get("do", "ok")
        if action == "sleep" and ctx.stop.wait(float(payload["seconds"])):  # withdrawn: stop at once
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error="stopped")
        elif action == "raise":
            raise RuntimeError(payload.get("message", "the handler broke"))
        elif action == "crash":
            os._exit(3)  # the worker process dies mid-job
        output: dict[str, Any] = {"echo": payload.get("echo")}
        if action == "big":
            output["blob"] = "x" * int(payload["size"])
        if marker is not None:
            with open(marker, "a") as handle:
                handle.write(f"done {job.id}\n")
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output=output)


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add(HANDLER_TYPE, ScriptedHandler, description="test handler driven by the payload")
