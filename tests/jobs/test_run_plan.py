"""One run plan from CUE to the step runner: discovery over NATS, the plan through the real
Platform API (``forge api`` on loopback: POST, GET), a ci job over the real NATS, and what the ci
handler gives the step runner — every field of a step, task, phase and artifact unchanged."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.jobs import CiJobPayload, SourceRef
from forge_core.domain.models import (
    ArtifactSpec,
    Job,
    JobResult,
    JobStatus,
    ProjectRef,
    PublishTarget,
    RunStatus,
    SecretRef,
    StepOutcome,
    StepRetries,
    StepSpec,
    StepStatus,
)
from forge_core.domain.plan import DiscoveryDocument
from forge_core.domain.run_plan import ArtifactPlan, RunPlan
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.ports.orchestrator import JobDispatcher, RunOutcome
from forge_core.ports.protocols import ExecutionContext
from forge_core.sdk import StepRunnerRegistrar, hookimpl
from forge_core.services import schemas
from forge_core.services.orchestrator import TIMEOUT_MARGIN, EmbeddedOrchestrator
from forge_core.settings import PluginSettings, Settings
from forge_core.worker.embedded import embedded_jobs

from .conftest import git

REPO_CUE = """package repo

forgeVersion: "v1.0.0"
phases: test: {group: 1, required: true, timeout: "5m"}
publishers: registry: {
	type:      "docker"
	registry:  "127.0.0.1:5000"
	namespace: "acme"
	credentials: {provider: "env", secretName: "REGISTRY_TOKEN", key: "password"}
}
"""

PROJECT_CUE = """package project

phases: test: {
	timeout: "90s"
	steps: [{
		name:    "unit"
		action:  "record"
		target:  "+test"
		timeout: "45s"
		secrets: {
			NPM_TOKEN: {provider: "env", secretName: "ACME_NPM", key: "token"}
			GH_TOKEN: {provider: "file", secretName: "github"}
		}
		retries: {attempts: 2, delay: "50ms", filters: ["connection reset", "^E: .*timed out$"]}
		settings: {
			args: {VERSION: "1.2.3", "ÜBER": "naïve ☃ — ü", EMPTY: ""}
			platforms: ["linux/amd64", "linux/arm64"]
			privileged: true
			cache: {size: 1.5, layers: 3, negative: -42, nested: {deep: [1, "two", {three: null}]}}
			none: {}
		}
	}, {
		name:   "lint"
		action: "record"
	}]
}

artifacts: tool: {
	type: "container"
	producer: earthly: {target: "+docker", args: {FLAVOUR: "slim"}}
	publishers: ["registry"]
}
"""

UNIT = StepSpec(
    name="unit",
    action="record",
    target="+test",
    timeout=timedelta(seconds=45),
    secrets={
        "NPM_TOKEN": SecretRef(provider="env", path="ACME_NPM", key="token"),
        "GH_TOKEN": SecretRef(provider="file", path="github"),
    },
    retries=StepRetries(
        attempts=2, delay=timedelta(milliseconds=50), filters=("connection reset", "^E: .*timed out$")
    ),
    settings={
        "args": {"VERSION": "1.2.3", "ÜBER": "naïve ☃ — ü", "EMPTY": ""},
        "platforms": ["linux/amd64", "linux/arm64"],
        "privileged": True,
        "cache": {"size": 1.5, "layers": 3, "negative": -42, "nested": {"deep": [1, "two", {"three": None}]}},
        "none": {},
    },
)
LINT = StepSpec(name="lint", action="record")
TOOL = ArtifactPlan(
    project=ProjectRef(name="tool", path="tool"),
    spec=ArtifactSpec(
        name="tool", type="container", producer="earthly",
        producer_settings={"target": "+docker", "args": {"FLAVOUR": "slim"}}, publishers=("registry",),
    ),
    publishers=(PublishTarget(
        name="registry", type="docker", settings={"registry": "127.0.0.1:5000", "namespace": "acme"},
        credentials={"default": SecretRef(provider="env", path="REGISTRY_TOKEN", key="password")},
    ),),
)


class RecordingRunner:
    """A step runner that keeps what it was given; its first run of ``unit`` fails the way a
    flaky network does, so the step's retries are exercised on the way."""

    received: list[tuple[StepSpec, ProjectRef, float | None]] = []
    secrets: list[dict[str, str]] = []
    lock = threading.Lock()

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        with self.lock:
            self.received.append((step, project, ctx.timeout))
            self.secrets.append(dict(ctx.secrets))
            first = len([s for s, _, _ in self.received if s.name == step.name]) == 1
        if step.name == "unit" and first:
            ctx.log("fetching layers: connection reset by peer")
            return StepOutcome(status=StepStatus.FAILED, exit_code=1, message="exited with code 1")
        ctx.log(f"{step.name}: settings {sorted(step.settings)}")
        return StepOutcome(status=StepStatus.SUCCESS, exit_code=0)


class RecordingPlugin:
    @hookimpl
    def forge_register_step_runners(self, register: StepRunnerRegistrar) -> None:
        register.add("record", RecordingRunner, description="keeps the steps it is given (test)")


class Capturing:
    """The JobDispatcher port around the NATS one, keeping every job it sends."""

    def __init__(self, inner: JobDispatcher) -> None:
        self.inner = inner
        self.jobs: list[tuple[Job, float]] = []

    async def dispatch(self, job: Job, timeout: float) -> JobResult:
        self.jobs.append((job, timeout))
        return await self.inner.dispatch(job, timeout)


@pytest.fixture
def recording_host() -> PluginHost:
    """The installed earthly producer and docker publisher, and the recording step runner."""
    RecordingRunner.received.clear()
    host = load_plugins(PluginSettings(allow=["forge_earthly", "forge_docker"]))
    host.admit(RecordingPlugin(), PluginInfo("recording", None, None))
    return host


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "acme"
    (repo / ".forge").mkdir(parents=True)
    (repo / "tool" / ".forge").mkdir(parents=True)
    (repo / ".forge" / "repo.cue").write_text(REPO_CUE)
    (repo / "tool" / ".forge" / "project.cue").write_text(PROJECT_CUE)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo)


STATE = frozenset({"status", "error", "exit_code", "logs_s3_key", "started_at", "completed_at"})


def plan_part(value: Any, drop: frozenset[str] = STATE) -> Any:
    """A recorded plan's JSON as the plan model has it: without the API's status and times."""
    if isinstance(value, dict):
        return {k: plan_part(v, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [plan_part(v, drop) for v in value]
    return value


def without_ids(value: Any) -> Any:
    """A plan's JSON without ids (the API assigns them; before, they are None)."""
    return plan_part(value, STATE | {"id"})


def test_every_field_of_a_step_task_and_artifact_reaches_the_step_runner_unchanged(
    settings: Settings, storage: FsspecStore, recording_host: PluginHost, repository: tuple[Path, str],
    platform_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, commit = repository
    monkeypatch.setenv("ACME_NPM", '{"token": "npm-s3cret-value"}')  # what the env provider reads
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "github").write_text("gh-s3cret-value")  # and the file provider
    settings.secrets.file.dir = tmp_path / "secrets"

    async def scenario() -> tuple[DiscoveryDocument, dict[str, Any], schemas.Run, Capturing, RunOutcome]:
        async with PlatformClient(platform_api.url, platform_api.token) as client:
            run = await client.create_run(schemas.RunCreate(
                repository="acme/monorepo", commit_sha=commit, branch="main", triggered_by="t",
            ))
            run_id = str(run.id)
            async with embedded_jobs(
                settings, recording_host, client, storage, state_dir=tmp_path / "state",
                job_types=("discovery", "ci"), concurrency=2,
            ) as dispatcher:
                discovery = Job(id=f"discovery-{run_id}", type="discovery", run_id=run_id,
                                payload={"repository": str(repo), "commit": commit, "branch": "main"})
                found = await dispatcher.dispatch(discovery, 120)
                assert found.status is JobStatus.SUCCESS, found.error
                document = DiscoveryDocument.model_validate(found.output)
                recorded = await client.record_plan(run_id, document.run_plan().model_dump(mode="json"))
                capturing = Capturing(dispatcher)
                outcome = await EmbeddedOrchestrator(capturing, client).execute(
                    run_id, recorded, SourceRef(repository=str(repo), commit=commit)
                )
            return document, recorded, await client.get_run(run_id), capturing, outcome

    document, recorded, fetched, capturing, outcome = asyncio.run(scenario())
    assert outcome == RunOutcome(RunStatus.SUCCESS), outcome.error

    # CUE → discovery → plan
    plan = document.run_plan()
    (phase,) = plan.phases
    assert (phase.name, phase.group_number, phase.required) == ("test", 1, True)
    (task,) = phase.tasks
    assert (task.key, task.project_name, task.project_path) == ("tool/test", "tool", "tool")
    assert task.timeout == timedelta(seconds=90)
    assert [step.spec() for step in task.steps] == [UNIT, LINT]
    assert plan.artifacts == (TOOL,)

    # → the API: POST returns the plan with ids, GET shows the same
    # the environments block is kept apart (promotions read it), not echoed with the plan
    planned = plan.model_dump(mode="json", exclude={"environments"})
    assert without_ids(recorded) == without_ids(planned)
    assert plan_part(fetched.model_dump(mode="json")["phases"]) == plan_part(recorded["phases"])
    assert [a.model_dump(mode="json") for a in fetched.artifacts] == planned["artifacts"] == recorded["artifacts"]
    assert RunPlan.model_validate(recorded, extra="ignore").unrecorded() is None

    # → the ci job's payload over NATS: the recorded task, ids included
    ((job, timeout),) = capturing.jobs
    payload = CiJobPayload.model_validate(job.payload)
    # the job may take every attempt of unit (45 s, 3 times, 50 ms apart), lint at the task's 90 s,
    # and the orchestrator's margin
    assert timeout == pytest.approx(45 * 3 + 0.05 * 2 + 90 + TIMEOUT_MARGIN)
    assert payload.task.model_dump(mode="json") == plan_part(recorded["phases"][0]["tasks"][0])

    # → what the ci handler gave the step runner: the spec as written; the step's limit (its own,
    # else the task's); unit ran twice (its retry filter matched), lint once
    project = ProjectRef(name="tool", path="tool")
    assert RecordingRunner.received == [(UNIT, project, 45.0), (UNIT, project, 45.0), (LINT, project, 90.0)]
    # the step's secret reference, resolved by its provider for that step only
    assert RecordingRunner.secrets[0]["NPM_TOKEN"] == "npm-s3cret-value"
    assert RecordingRunner.secrets[0]["GH_TOKEN"] == "gh-s3cret-value"
    assert "NPM_TOKEN" not in RecordingRunner.secrets[2], "lint names no secret"
    steps = fetched.phases[0].tasks[0].steps
    assert [(s.name, s.status) for s in steps] == [("unit", RunStatus.SUCCESS), ("lint", RunStatus.SUCCESS)]
    log = storage.read_bytes(f"logs/{fetched.id}/{task_id(recorded)}/{steps[0].id}.log").decode()
    assert "connection reset by peer" in log
    assert "attempt 1 of 3 failed" in log and "attempt 2 of 3" in log


def task_id(recorded: dict[str, Any]) -> str:
    return str(recorded["phases"][0]["tasks"][0]["id"])
