"""The orchestrator's artifact stage: after the phase groups, one ``artifact`` job per artifact,
at most ``max_parallel`` at once, every one run; a failed one fails the run, named."""

from __future__ import annotations

import asyncio
from typing import Any

from jobs_support import RecordingRecorder

from forge_core.domain.errors import JobTimeoutError
from forge_core.domain.jobs import ArtifactJobPayload, ArtifactSource, SourceRef
from forge_core.domain.models import ArtifactSpec, Job, JobResult, JobStatus, ProjectRef, RunStatus
from forge_core.domain.run_plan import ArtifactPlan
from forge_core.ports.orchestrator import ArtifactStage, RunOutcome
from forge_core.services.orchestrator import EmbeddedOrchestrator

SOURCE = ArtifactSource(repository="/repo", commit="c" * 40, branch="main")


class Dispatcher:
    """A JobDispatcher answering ci jobs with success and artifact jobs as ``answers`` say,
    recording how many artifact jobs ran at once."""

    def __init__(self, answers: dict[str, str | Exception]) -> None:
        self.answers, self.running, self.most = answers, 0, 0
        self.jobs: list[Job] = []

    async def dispatch(self, job: Job, timeout: float) -> JobResult:
        self.jobs.append(job)
        if job.type != "artifact":
            return JobResult(job_id=job.id, status=JobStatus.SUCCESS)
        payload = ArtifactJobPayload.model_validate(job.payload)
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        answer = self.answers.get(payload.artifact.spec.name, "ok")
        if isinstance(answer, Exception):
            raise answer
        if answer != "ok":
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=answer)
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS)


def artifact(name: str) -> ArtifactPlan:
    return ArtifactPlan(project=ProjectRef(name="svc", path="svc"),
                        spec=ArtifactSpec(name=name, type="archive", producer="exec"))


PLAN: dict[str, Any] = {"phases": [{"id": "p1", "name": "build", "group_number": 1, "tasks": [
    {"id": "t1", "key": "svc/build", "project_name": "svc", "project_path": "svc", "steps": []}]}]}


def execute(
    dispatcher: Dispatcher, recorder: RecordingRecorder, names: list[str], plan: dict[str, Any] = PLAN
) -> RunOutcome:
    stage = ArtifactStage(artifacts=tuple(artifact(n) for n in names), source=SOURCE, publish=True,
                          versions={"svc": "1.0.0"})
    orchestrator = EmbeddedOrchestrator(dispatcher, recorder, max_parallel=2)
    return asyncio.run(orchestrator.execute("run-a", plan, SourceRef(repository="/repo", commit="c" * 40),
                                            artifacts=stage))


def test_every_artifact_runs_after_the_groups_at_most_max_parallel_at_once() -> None:
    dispatcher, recorder = Dispatcher({}), RecordingRecorder()
    outcome = execute(dispatcher, recorder, ["a", "b", "c", "d"])
    assert outcome.status is RunStatus.SUCCESS
    assert [j.type for j in dispatcher.jobs][:1] == ["ci"]  # the phases first
    artifacts = [ArtifactJobPayload.model_validate(j.payload) for j in dispatcher.jobs if j.type == "artifact"]
    assert sorted(p.artifact.spec.name for p in artifacts) == ["a", "b", "c", "d"]
    assert {(p.publish, p.version, p.source.branch) for p in artifacts} == {(True, "1.0.0", "main")}
    assert dispatcher.most == 2


def test_a_failed_artifact_fails_the_run_naming_it_and_the_others_still_run() -> None:
    dispatcher = Dispatcher({"b": "target 'registry' (docker): down",
                             "c": JobTimeoutError("no reply within 1800 s", where="artifact")})
    recorder = RecordingRecorder()
    outcome = execute(dispatcher, recorder, ["a", "b", "c", "d"])
    assert outcome.status is RunStatus.FAILED
    assert "artifact svc/b failed: target 'registry' (docker): down" in (outcome.error or "")
    assert "artifact svc/c failed:" in (outcome.error or "") and "no reply" in (outcome.error or "")
    assert len([j for j in dispatcher.jobs if j.type == "artifact"]) == 4
    # the job nobody answered is recorded failed by the orchestrator (the others record themselves)
    assert [c[:3] for c in recorder.calls if c[0] == "artifact"] == [("artifact", "svc/c", "failed")]
    assert recorder.statuses("run", "run-a")[-1] == "failed"


def test_no_artifact_job_when_a_required_phase_failed() -> None:
    class Failing(Dispatcher):
        async def dispatch(self, job: Job, timeout: float) -> JobResult:
            if job.type == "ci":
                self.jobs.append(job)
                return JobResult(job_id=job.id, status=JobStatus.FAILED, error="exit 1")
            return await super().dispatch(job, timeout)

    dispatcher = Failing({})
    outcome = execute(dispatcher, RecordingRecorder(), ["a"])
    assert outcome.status is RunStatus.FAILED
    assert [j.type for j in dispatcher.jobs] == ["ci"]


def _with_then(names: list[str], answer: str | None, answers: dict[str, str | Exception] | None = None,
               ) -> tuple[RunOutcome, list[str], RecordingRecorder]:
    """The stage's ``then`` (the release and deployment stages) recording when it ran."""
    dispatcher, recorder, ran = Dispatcher(answers or {}), RecordingRecorder(), []

    async def then() -> str | None:
        ran.append(recorder.statuses("run", "run-a")[-1])  # the run is not finished yet
        return answer

    stage = ArtifactStage(artifacts=tuple(artifact(n) for n in names), source=SOURCE, then=then)
    orchestrator = EmbeddedOrchestrator(dispatcher, recorder, max_parallel=2)
    outcome = asyncio.run(orchestrator.execute("run-a", PLAN, SourceRef(repository="/repo", commit="c" * 40),
                                               artifacts=stage))
    return outcome, ran, recorder


def test_then_runs_after_the_artifacts_before_the_run_is_finished_and_its_error_fails_the_run() -> None:
    outcome, ran, recorder = _with_then(["a"], None)
    assert (outcome.status, ran) == (RunStatus.SUCCESS, ["running"])
    failed, ran, recorder = _with_then([], "project svc: the release job failed")  # no artifacts: still runs
    assert (failed.status, failed.error, ran) == (RunStatus.FAILED, "project svc: the release job failed", ["running"])
    assert recorder.statuses("run", "run-a")[-1] == "failed"


def test_then_does_not_run_when_an_artifact_failed() -> None:
    outcome, ran, _ = _with_then(["a"], None, {"a": "producer exploded"})
    assert (outcome.status, ran) == (RunStatus.FAILED, [])
