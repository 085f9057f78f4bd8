"""Helpers around the RunRecorder port for the code that drives jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import failure_target
from forge_core.domain.models import Job, RunStatus
from forge_core.ports.platform import DeploymentReporter, ReleaseApi, RunRecorder, StatusBatchRecorder, StatusChange

T = TypeVar("T")


async def record_job_failure(recorder: RunRecorder, job: Job, reason: str) -> None:
    """Mark failed what a job's failure fails (its task, or a discovery job's run)."""
    target = failure_target(job)
    if target is None:
        return
    kind, entity_id = target
    if kind == "task":
        await recorder.set_task_status(entity_id, RunStatus.FAILED.value, error=reason)
    else:
        await recorder.set_run_status(entity_id, RunStatus.FAILED.value, error=reason)


async def record_statuses(recorder: RunRecorder, changes: Sequence[StatusChange]) -> None:
    """``changes`` through ``recorder``: in one batch when it takes batches, else one call each."""
    if isinstance(recorder, StatusBatchRecorder):
        await recorder.record_statuses(changes)
        return
    for change in changes:
        if change.kind == "task":
            await recorder.set_task_status(change.entity_id, change.status, error=change.error)
        else:
            await recorder.set_step_status(
                change.entity_id, change.status, exit_code=change.exit_code, logs_key=change.logs_key
            )


def _on_loop(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coroutine`` on the worker's ``loop`` from a handler thread and wait for its result."""
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError:  # the worker's loop is gone: it stopped and released this job
        coroutine.close()
        raise ForgeError("the worker has stopped; the job was released for redelivery") from None
    return future.result(timeout)


class BlockingReleases:
    """The ReleaseApi port for synchronous job handlers (the ``release`` job's ``JobContext.releases``)."""

    def __init__(self, releases: ReleaseApi, loop: asyncio.AbstractEventLoop, timeout: float = 120) -> None:
        self._releases, self._loop, self._timeout = releases, loop, timeout

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return _on_loop(self._loop, coroutine, self._timeout)

    def create_release(self, release: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._releases.create_release(release))

    def get_release(self, repository: str, project: str, ref: str) -> dict[str, Any]:
        return self._call(self._releases.get_release(repository, project, ref))

    def set_alias(
        self, repository: str, project: str, alias: str, *, release: str, alias_type: str
    ) -> dict[str, Any]:
        return self._call(self._releases.set_alias(repository, project, alias, release=release, alias_type=alias_type))

    def set_release_image(
        self, repository: str, project: str, ref: str, *, oci_uri: str, oci_digest: str
    ) -> dict[str, Any]:
        return self._call(
            self._releases.set_release_image(repository, project, ref, oci_uri=oci_uri, oci_digest=oci_digest)
        )


class BlockingRecorder:
    """The RunRecorder port for synchronous job handlers running in a worker's threads: each call
    runs on the worker's event loop and waits for it (so the order of updates is kept)."""

    def __init__(self, recorder: RunRecorder, loop: asyncio.AbstractEventLoop, timeout: float = 120) -> None:
        self._recorder, self._loop, self._timeout = recorder, loop, timeout

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return _on_loop(self._loop, coroutine, self._timeout)

    def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._recorder.record_plan(run_id, plan))

    def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        self._call(self._recorder.set_run_status(run_id, status, error=error))

    def set_phase_status(self, phase_id: str, status: str) -> None:
        self._call(self._recorder.set_phase_status(phase_id, status))

    def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        self._call(self._recorder.set_task_status(task_id, status, error=error))

    def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None:
        self._call(self._recorder.set_step_status(step_id, status, exit_code=exit_code, logs_key=logs_key))

    def record_statuses(self, changes: Sequence[StatusChange]) -> None:
        """Several task and step changes at once (see :func:`record_statuses`)."""
        self._call(record_statuses(self._recorder, changes))

    def record_artifact(self, run_id: str, project: str, artifact: str, record: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._recorder.record_artifact(run_id, project, artifact, record))

    def artifact_record(self, run_id: str, project: str, artifact: str) -> dict[str, Any] | None:
        return self._call(self._recorder.artifact_record(run_id, project, artifact))

class BlockingDeployments:
    """The DeploymentReporter port for synchronous job handlers, like :class:`BlockingRecorder`."""

    def __init__(self, reporter: DeploymentReporter, loop: asyncio.AbstractEventLoop, timeout: float = 120) -> None:
        self._reporter, self._loop, self._timeout = reporter, loop, timeout

    def create_deployment(self, release_id: str, environment: str, *, status: str = "pending") -> dict[str, Any]:
        coroutine = self._reporter.create_deployment(release_id, environment, status=status)
        return _on_loop(self._loop, coroutine, self._timeout)

    def set_deployment_status(
        self, deployment_id: str, status: str, *, gitops_commit_sha: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        coroutine = self._reporter.set_deployment_status(
            deployment_id, status, gitops_commit_sha=gitops_commit_sha, reason=reason
        )
        return _on_loop(self._loop, coroutine, self._timeout)
