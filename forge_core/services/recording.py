"""Helpers around the RunRecorder port for the code that drives jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import failure_target
from forge_core.domain.models import Job, RunStatus
from forge_core.ports.platform import ReleaseApi, RunRecorder

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


class _OnLoop:
    """Runs coroutines on the worker's event loop from a handler thread, waiting for each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop, self._timeout = loop, timeout

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the worker's loop is gone: it stopped and released this job
            coroutine.close()
            raise ForgeError("the worker has stopped; the job was released for redelivery") from None
        return future.result(self._timeout)


class BlockingReleases(_OnLoop):
    """The ReleaseApi port for synchronous job handlers (the ``release`` job's ``JobContext.releases``)."""

    def __init__(self, releases: ReleaseApi, loop: asyncio.AbstractEventLoop, timeout: float = 120) -> None:
        super().__init__(loop, timeout)
        self._releases = releases

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
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the worker's loop is gone: it stopped and released this job
            coroutine.close()
            raise ForgeError("the worker has stopped; the job was released for redelivery") from None
        return future.result(self._timeout)

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
