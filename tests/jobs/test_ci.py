"""The ``ci`` job handler through the whole path: dispatcher → JetStream → worker → step runners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder
from pydantic import SecretStr

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import CiJobPayload, SourceRef, StepPlan, TaskPlan
from forge_core.domain.models import Job, JobResult, JobStatus, StepRetries
from forge_core.plugin.host import PluginHost
from forge_core.ports.storage import log_key
from forge_core.settings import Settings
from forge_core.testing.contracts import JobHandlerContract
from forge_core.worker.runner import Worker

from .conftest import running

SECRET = "hunter2-very-secret"


def ci_job(
    repo: Path, commit: str, steps: list[tuple[str, str, str]], project: str = "api", task_id: str = "t1"
) -> Job:
    task = TaskPlan(
        id=task_id, key=f"{project}:test", project_name=project, project_path=project,
        steps=tuple(StepPlan(id=f"{task_id}-s{i}", name=name, action=action, target=target)
                    for i, (name, action, target) in enumerate(steps)),
    )
    payload = CiJobPayload(task=task, source=SourceRef(repository=str(repo), commit=commit))
    return Job(id=f"ci-{task_id}", type="ci", run_id="run-ci", payload=payload.model_dump(mode="json"))


def dispatch(make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, job: Job) -> JobResult:
    async def scenario() -> JobResult:
        async with running(make_worker("ci")):
            client = await connect(settings.nats)
            try:
                return await NatsDispatcher(client, settings.nats, storage).dispatch(job, timeout=30)
            finally:
                await client.close()

    return asyncio.run(scenario())


def test_steps_run_in_the_checkout_and_their_logs_are_stored_masked(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str],
) -> None:
    settings.worker.secrets = {"DEPLOY_TOKEN": SecretStr(SECRET)}
    repo, commit = monorepo
    job = ci_job(repo, commit, [("read", "exec", "cat hello.txt"), ("leak", "exec", 'echo "token=$DEPLOY_TOKEN"')])
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.SUCCESS, result.error
    assert [s["status"] for s in result.output["steps"]] == ["success", "success"]
    first_log = storage.read_bytes(log_key("run-ci", "t1", "t1-s0")).decode()
    assert first_log == "hello from api\n"
    leak_log = storage.read_bytes(log_key("run-ci", "t1", "t1-s1")).decode()
    assert leak_log == "token=****\n" and SECRET not in leak_log
    assert recorder.calls == [
        ("task", "t1", "running", None),
        ("step", "t1-s0", "running", None, log_key("run-ci", "t1", "t1-s0")),  # followable while it runs
        ("step", "t1-s0", "success", 0, log_key("run-ci", "t1", "t1-s0")),
        ("step", "t1-s1", "running", None, log_key("run-ci", "t1", "t1-s1")),
        ("step", "t1-s1", "success", 0, log_key("run-ci", "t1", "t1-s1")),
        ("task", "t1", "success", None),
    ]
    assert not list((settings.worker.cache_dir / "ci" / "work").iterdir())  # checkouts are removed


def test_the_first_failing_step_fails_the_task_and_skips_the_rest(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str],
) -> None:
    repo, commit = monorepo
    job = ci_job(repo, commit, [("lint", "exec", "echo checking; exit 4"), ("never", "exec", "echo ran")])
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.FAILED
    assert result.error == "step 'lint' failed: exited with code 4"
    assert storage.read_bytes(log_key("run-ci", "t1", "t1-s0")).decode() == "checking\n"
    assert ("step", "t1-s1", "skipped", None, None) in recorder.calls
    assert recorder.calls[-1] == ("task", "t1", "failed", "step 'lint' failed: exited with code 4")


def test_a_redelivered_job_skips_the_steps_an_earlier_delivery_finished(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API refuses to move a finished step back to running; the redelivered job goes on from
    the first step that had not finished, instead of failing the task."""
    finished = {"t1-s0"}
    record = recorder.set_step_status

    async def step_status(step_id: str, status: str, **extra: Any) -> None:
        if step_id in finished and status == "running":
            raise ForgeErrorWithCode(step_id)
        await record(step_id, status, **extra)

    monkeypatch.setattr(recorder, "set_step_status", step_status)
    repo, commit = monorepo
    job = ci_job(repo, commit, [("first", "exec", "echo again"), ("second", "exec", "echo second")])
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.SUCCESS, result.error
    assert not storage.exists(log_key("run-ci", "t1", "t1-s0"))  # not run twice
    assert storage.read_bytes(log_key("run-ci", "t1", "t1-s1")).decode() == "second\n"
    assert recorder.calls[-1] == ("task", "t1", "success", None)


class ForgeErrorWithCode(ForgeError):
    code = "resource_conflict"

    def __init__(self, step_id: str) -> None:
        super().__init__(f"step {step_id} is already success", details={"id": step_id, "status": "success"})


def test_a_step_runner_that_raises_fails_its_step_with_the_plugins_error(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str],
) -> None:
    """The StepRunner contract on this path: the Earthly runner given a target with no Earthfile
    and an action nobody registered both fail the step, with the reason in its log."""
    repo, commit = monorepo
    job = ci_job(repo, commit, [("build", "earthly", "+build")])
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.FAILED and "no Earthfile in api/" in (result.error or "")
    assert "no Earthfile in api/" in storage.read_bytes(log_key("run-ci", "t1", "t1-s0")).decode()

    unknown = ci_job(repo, commit, [("build", "nope", "x")], task_id="t2")
    result = dispatch(make_worker, settings, storage, unknown)
    assert result.status is JobStatus.FAILED
    assert "unknown step runner 'nope'; installed: earthly, exec" in (result.error or "")


def retrying_job(repo: Path, commit: str, command: str, retries: StepRetries) -> Job:
    step = StepPlan(id="r1-s0", name="flaky", action="exec", target=command, retries=retries)
    task = TaskPlan(id="r1", key="api:test", project_name="api", project_path="api", steps=(step,))
    payload = CiJobPayload(task=task, source=SourceRef(repository=str(repo), commit=commit))
    return Job(id="ci-r1", type="ci", run_id="run-ci", payload=payload.model_dump(mode="json"))


def flaky(counter: Path, *, fails: int, output: str) -> str:
    """A command that prints ``output`` and fails its first ``fails`` runs (counted in a file)."""
    return (f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}; '
            f'if [ "$n" -lt {fails} ]; then echo "{output}"; exit 1; fi; echo done')


def test_a_failed_step_whose_output_matches_a_retry_filter_runs_again_each_attempt_logged(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    counter = tmp_path / "runs"
    retries = StepRetries(attempts=3, delay=timedelta(milliseconds=50), filters=("nothing", r"registry .* timed out$"))
    job = retrying_job(repo, commit, flaky(counter, fails=2, output="E: registry 127.0.0.1 timed out"), retries)
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.SUCCESS, result.error
    assert counter.read_text().strip() == "3"
    log = storage.read_bytes(log_key("run-ci", "r1", "r1-s0")).decode().splitlines()
    assert log == [
        "E: registry 127.0.0.1 timed out",
        "step flaky: attempt 1 of 4 failed: exited with code 1; next attempt in 0.05 s",
        "step flaky: attempt 2 of 4",
        "E: registry 127.0.0.1 timed out",
        "step flaky: attempt 2 of 4 failed: exited with code 1; next attempt in 0.05 s",
        "step flaky: attempt 3 of 4",
        "done",
    ]
    assert ("step", "r1-s0", "success", 0, log_key("run-ci", "r1", "r1-s0")) in recorder.calls


def test_a_failure_no_retry_filter_matches_is_not_retried(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    counter = tmp_path / "runs"
    retries = StepRetries(attempts=3, delay=timedelta(0), filters=("timed out",))
    job = retrying_job(repo, commit, flaky(counter, fails=5, output="SyntaxError: invalid syntax"), retries)
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.FAILED
    assert counter.read_text().strip() == "1"
    log = storage.read_bytes(log_key("run-ci", "r1", "r1-s0")).decode()
    assert "step flaky: not retried: no output line matches a retry filter" in log


def test_a_step_that_keeps_failing_fails_after_its_last_attempt(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    monorepo: tuple[Path, str], tmp_path: Path,
) -> None:
    repo, commit = monorepo
    counter = tmp_path / "runs"
    once = StepRetries(attempts=1, delay=timedelta(0))
    job = retrying_job(repo, commit, flaky(counter, fails=5, output="boom"), once)
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.FAILED
    assert result.error == "step 'flaky' failed: exited with code 1"
    assert counter.read_text().strip() == "2"  # no filters: any failure is retried, once


def test_an_invalid_retry_filter_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"retry filter '\(unclosed' is not a regular expression"):
        StepRetries(attempts=1, filters=("(unclosed",))


def test_a_commit_missing_from_the_repository_fails_the_task(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str],
) -> None:
    repo, _ = monorepo
    result = dispatch(make_worker, settings, storage, ci_job(repo, "0" * 40, [("x", "exec", "true")]))
    assert result.status is JobStatus.FAILED and "is not in" in (result.error or "")
    assert recorder.calls[-1][:3] == ("task", "t1", "failed")


class SyncRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        self.calls.append(("task", task_id, status))

    def set_step_status(self, step_id: str, status: str, **_: Any) -> None:
        self.calls.append(("step", step_id, status))


class TestCiHandler(JobHandlerContract):
    plugin_id = "core.ci"
    builtin = True
    names = ("ci",)

    @pytest.fixture(autouse=True)
    def _repo(self, monorepo: tuple[Path, str]) -> None:
        self.repo, self.commit = monorepo

    def case(self, name: str, tmp_path: Path) -> Any:
        job = ci_job(self.repo, self.commit, [("read", "exec", "cat hello.txt")])
        job = job.model_copy(update={"id": "job-contract"})
        from forge_core.plugin.host import load_plugins
        from forge_core.ports.contexts import JobContext
        from forge_core.settings import PluginSettings

        registry = load_plugins(PluginSettings(allow=["forge_exec"])).registry
        return job, JobContext(
            cache_dir=tmp_path / "cache", registry=registry, recorder=SyncRecorder(),
            storage=FsspecStore(str(tmp_path / "store")),
        )

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        super().check(name, result, case, host)
        assert result.status is JobStatus.SUCCESS, result.error


class BatchRecorder(RecordingRecorder):
    """A recorder that takes batches (as the in-process API does): each batch is one call,
    refused whole when any change in it is."""

    def __init__(self, finished: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.finished = finished  # steps an earlier delivery finished: starting them is a conflict
        self.batches: list[list[tuple[Any, ...]]] = []

    async def record_statuses(self, changes: Any) -> None:
        if any(c.kind == "step" and c.entity_id in self.finished and c.status == "running" for c in changes):
            raise ForgeErrorWithCode("t1-s0")
        self.batches.append([(c.kind, c.entity_id, c.status) for c in changes])

    async def set_step_status(self, step_id: str, status: str, **extra: Any) -> None:
        if step_id in self.finished and status == "running":
            raise ForgeErrorWithCode("t1-s0")
        await super().set_step_status(step_id, status, **extra)


def test_a_task_reports_its_statuses_in_one_call_per_step_and_one_to_end(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, host: PluginHost,
    monorepo: tuple[Path, str],
) -> None:
    """The task's start goes with its first step's, each step's end with the next one's start,
    the last step's end (and the skipped steps) with the task's end."""
    repo, commit = monorepo
    batches = BatchRecorder()
    job = ci_job(repo, commit, [("one", "exec", "true"), ("two", "exec", "exit 3"), ("three", "exec", "true")])
    result = dispatch(lambda job_type: Worker(settings, host, job_type, batches, storage), settings, storage, job)
    assert result.status is JobStatus.FAILED
    assert batches.batches == [
        [("task", "t1", "running"), ("step", "t1-s0", "running")],
        [("step", "t1-s0", "success"), ("step", "t1-s1", "running")],
        [("step", "t1-s1", "failed"), ("step", "t1-s2", "skipped"), ("task", "t1", "failed")],
    ]
    assert batches.calls == []  # nothing one by one


def test_a_redelivery_refused_as_a_batch_goes_on_from_the_first_unfinished_step(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore, host: PluginHost,
    monorepo: tuple[Path, str],
) -> None:
    repo, commit = monorepo
    batches = BatchRecorder(finished=frozenset({"t1-s0"}))
    job = ci_job(repo, commit, [("first", "exec", "echo again"), ("second", "exec", "echo second")])
    result = dispatch(lambda job_type: Worker(settings, host, job_type, batches, storage), settings, storage, job)
    assert result.status is JobStatus.SUCCESS, result.error
    assert not storage.exists(log_key("run-ci", "t1", "t1-s0"))  # not run twice
    # the refused batch again one by one: the task's start, then the step's, refused alone
    assert batches.batches == [
        [("task", "t1", "running")],
        [("step", "t1-s1", "running")],
        [("step", "t1-s1", "success"), ("task", "t1", "success")],
    ]
