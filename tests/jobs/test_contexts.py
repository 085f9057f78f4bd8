"""What a job handler receives from the worker: typed services, never the settings."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import types
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from jobs_support import RecordingRecorder
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

from forge_core.adapters.storage import FsspecStore
from forge_core.builtin.ci import CiHandler
from forge_core.domain.jobs import CiJobPayload, SourceRef, StepPlan, TaskPlan
from forge_core.domain.models import Job, JobResult, JobStatus, ProjectRef, SecretRef, StepOutcome, StepSpec
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import StepRunnerRegistrar
from forge_core.ports.contexts import ExecutionContext, JobContext
from forge_core.ports.storage import log_key
from forge_core.services.secrets import ProviderSecrets
from forge_core.settings import PluginSettings, Settings
from forge_core.worker.runner import Worker

from .test_ci import SECRET, ci_job, dispatch

SENTINELS = ("dbpass-sentinel", "api-token-sentinel", "notifier-token-sentinel", "webhook-sentinel")


def reachable(root: object, depth: int = 5) -> list[object]:
    """Every object reachable from ``root`` through attributes, mappings and sequences (not
    through classes, functions, modules or event loops), ``depth`` levels deep."""
    seen: set[int] = set()
    found: list[object] = []
    layer = [root]
    skip = (type, types.FunctionType, types.MethodType, types.ModuleType, asyncio.AbstractEventLoop)
    for _ in range(depth):
        following: list[object] = []
        for item in layer:
            if id(item) in seen or isinstance(item, skip):
                continue
            seen.add(id(item))
            found.append(item)
            if isinstance(item, Mapping):
                following.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                following.extend(item)
            elif isinstance(item, BaseModel):
                following.extend(getattr(item, name) for name in type(item).model_fields)
            elif hasattr(item, "__dict__"):
                following.extend(vars(item).values())
            elif dataclasses.is_dataclass(item):
                following.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        layer = following
    return found


def test_the_ci_handler_gets_typed_services_and_never_the_settings(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    recorder: RecordingRecorder, monorepo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.database.url = "postgresql+asyncpg://forge:dbpass-sentinel@127.0.0.1/forge"
    settings.api.token = SecretStr("api-token-sentinel")
    settings.api.notifier.token = SecretStr("notifier-token-sentinel")
    settings.api.webhook_secret = SecretStr("webhook-sentinel")
    settings.worker.secrets = {"DEPLOY_TOKEN": SecretStr(SECRET)}
    received: list[JobContext] = []
    handle = CiHandler.handle

    def spy(self: CiHandler, job: Job, ctx: JobContext) -> JobResult:
        received.append(ctx)
        return handle(self, job, ctx)

    monkeypatch.setattr(CiHandler, "handle", spy)
    repo, commit = monorepo
    result = dispatch(make_worker, settings, storage, ci_job(repo, commit, [("read", "exec", "cat hello.txt")]))
    assert result.status is JobStatus.SUCCESS, result.error

    (ctx,) = received
    assert ctx.storage is storage
    assert ctx.recorder is not None and ctx.git is not None
    assert isinstance(ctx.secrets, ProviderSecrets)
    assert dict(ctx.step_secrets) == {"DEPLOY_TOKEN": SECRET}
    assert ctx.cue == settings.cue
    assert ctx.deployments is None  # this recorder records runs only: no deployment reporter to give
    with warnings.catch_warnings():  # the walk reads the deprecated services map too
        warnings.simplefilter("ignore", DeprecationWarning)
        everything = reachable(ctx)
    assert not [o for o in everything if isinstance(o, BaseSettings)], "a handler must not get the settings"
    texts = [o for o in everything if isinstance(o, str)]
    texts += [o.get_secret_value() for o in everything if isinstance(o, SecretStr)]
    assert any(SECRET in text for text in texts)  # the walk does reach the values the handler holds
    leaked = [s for s in SENTINELS if any(s in text for text in texts)]
    assert leaked == []
    with pytest.warns(DeprecationWarning, match="JobContext.services is deprecated"):
        assert sorted(ctx.services) == ["recorder", "storage"]


def test_reading_the_01_services_map_warns_and_still_works(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path / "store"))
    registry = load_plugins(PluginSettings(autoload=False)).registry
    ctx = JobContext(cache_dir=tmp_path, registry=registry, storage=store)
    with pytest.warns(DeprecationWarning, match=r"use the typed fields \(ctx.recorder, ctx.storage"):
        assert ctx.services["storage"] is store
    with pytest.warns(DeprecationWarning, match="JobContext.services is deprecated"):
        assert ctx.services.get("settings") is None
    with pytest.warns(DeprecationWarning, match="JobContext.services is deprecated"):
        assert "secrets" not in ctx.services


def test_a_context_built_the_01_way_is_taken_typed_with_a_warning(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path / "store"))
    registry = load_plugins(PluginSettings(autoload=False)).registry
    recorder: Any = object()
    with pytest.warns(DeprecationWarning, match=r"JobContext\(services=...\) is deprecated"):
        ctx = JobContext(
            cache_dir=tmp_path, registry=registry,
            services={"recorder": recorder, "storage": store, "secrets": {"TOKEN": "step-token-value"},
                      "settings": Settings()},
        )
    assert (ctx.recorder, ctx.storage, dict(ctx.step_secrets)) == (recorder, store, {"TOKEN": "step-token-value"})
    with pytest.warns(DeprecationWarning, match="JobContext.services is deprecated"):
        assert sorted(ctx.services) == ["recorder", "storage"]  # the settings are not passed on
    assert "step-token-value" not in repr(ctx)


def secret_job(repo: Path, commit: str, secrets: dict[str, SecretRef], command: str, task_id: str) -> Job:
    step = StepPlan(id=f"{task_id}-s0", name="push", action="exec", target=command, secrets=secrets)
    task = TaskPlan(id=task_id, key="api:publish", project_name="api", project_path="api", steps=(step,))
    payload = CiJobPayload(task=task, source=SourceRef(repository=str(repo), commit=commit))
    return Job(id=f"ci-{task_id}", type="ci", run_id="run-ci", payload=payload.model_dump(mode="json"))


def test_a_steps_own_secrets_are_resolved_for_it_and_masked_in_its_log(
    make_worker: Callable[..., Worker], settings: Settings, storage: FsspecStore,
    monorepo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("ACME_PUSH_TOKEN", "push-token-31f5")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "npm.json").write_text(json.dumps({"token": "npm-token-8e2a"}))
    settings.secrets.file.dir = tmp_path / "secrets"
    settings.worker.secrets = {"DEPLOY_TOKEN": SecretStr(SECRET)}
    repo, commit = monorepo
    refs = {"PUSH": SecretRef(provider="env", path="ACME_PUSH_TOKEN"),
            "NPM": SecretRef(provider="file", path="npm.json", key="token")}
    command = 'test "$PUSH" = push-token-31f5 && test "$NPM" = npm-token-8e2a && echo "$PUSH $NPM $DEPLOY_TOKEN"'
    result = dispatch(make_worker, settings, storage, secret_job(repo, commit, refs, command, "t1"))
    assert result.status is JobStatus.SUCCESS, result.error
    assert storage.read_bytes(log_key("run-ci", "t1", "t1-s0")).decode() == "**** **** ****\n"

    missing = {"PUSH": SecretRef(provider="env", path="ACME_ABSENT_TOKEN")}
    result = dispatch(make_worker, settings, storage, secret_job(repo, commit, missing, "echo never", "t2"))
    error = ("step 'push' of task 'api:publish': credential 'PUSH': env secret 'ACME_ABSENT_TOKEN': "
             "the worker has no such environment variable")
    assert result.status is JobStatus.FAILED
    assert result.output["steps"][0]["message"] == error
    assert storage.read_bytes(log_key("run-ci", "t2", "t2-s0")).decode() == error + "\n"


class LeakyRunner:
    """A step runner whose error quotes its secret (as a careless client library's would)."""

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        raise RuntimeError(f"login refused for token {ctx.secrets['PUSH']}")


class LeakyPlugin:
    @hookimpl
    def forge_register_step_runners(self, register: StepRunnerRegistrar) -> None:
        register.add("leaky", LeakyRunner)


def test_a_steps_error_is_masked_in_the_stored_result_too(
    make_worker: Callable[..., Worker], host: PluginHost, settings: Settings, storage: FsspecStore,
    monorepo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    host.admit(LeakyPlugin(), PluginInfo("test-leaky", None, None))
    monkeypatch.setenv("ACME_PUSH_TOKEN", "push-token-31f5")
    repo, commit = monorepo
    job = secret_job(repo, commit, {"PUSH": SecretRef(provider="env", path="ACME_PUSH_TOKEN")}, "", "t1")
    job = job.model_copy(update={"payload": {**job.payload, "task": {
        **job.payload["task"], "steps": [{**job.payload["task"]["steps"][0], "action": "leaky"}]}}})
    result = dispatch(make_worker, settings, storage, job)
    assert result.status is JobStatus.FAILED
    assert result.error == "step 'push' failed: RuntimeError: login refused for token ****"
    assert result.output["steps"][0]["message"] == "RuntimeError: login refused for token ****"
    assert "push-token-31f5" not in storage.read_bytes(log_key("run-ci", "t1", "t1-s0")).decode()


def test_a_worker_recording_through_the_api_gives_handlers_the_deployment_reporter() -> None:
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.ports.platform import DeploymentReporter

    client = PlatformClient("http://127.0.0.1:9", "token")
    assert isinstance(client, DeploymentReporter)  # what Worker._context checks before wrapping it
    assert not isinstance(object(), DeploymentReporter)
