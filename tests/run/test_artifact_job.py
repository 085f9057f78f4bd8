"""The ``artifact`` job end to end through the bus: NATS JetStream, an in-process worker, the
embedded Platform API (SQLite) recording the outcome, the real docker publisher against the real
registry (Debian's docker-registry), and a third party's producer and publisher
(:mod:`acme_forge_artifacts`, written against ``forge_core.sdk`` only)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_core.adapters.oci import embedded_store, open_store
from forge_core.adapters.signing_keys import load_verifier
from forge_core.adapters.storage import FsspecStore
from forge_core.cli.platform import platform_client
from forge_core.domain.jobs import ArtifactJobPayload, ArtifactSource
from forge_core.domain.models import ArtifactSpec, Job, JobResult, ProjectRef, PublishTarget, SecretRef
from forge_core.domain.oci import Manifest, RegistryReference
from forge_core.domain.run_plan import ArtifactPlan, RunPlan
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.services import schemas
from forge_core.services.tracking import read_tracking_image
from forge_core.settings import PluginSettings, Settings
from forge_core.settings.nats import NatsSettings
from forge_core.settings.storage import StorageSettings
from forge_core.settings.worker import WorkerSettings
from forge_core.testing.registry import USER, RegistryServer, free_port
from forge_core.worker.embedded import embedded_jobs

sys.path.insert(0, str(Path(__file__).parent))
import acme_forge_artifacts

NATS_URL = "nats://127.0.0.1:4222"
FILES = {"app/hello": "hello from svc\n"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "mono"
    (repo / "svc").mkdir(parents=True)
    (repo / "svc" / "README").write_text("svc\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def settings(tmp_path: Path, prefix: str) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        nats=NatsSettings(url=NATS_URL, prefix=prefix),
        storage=StorageSettings(url=str(tmp_path / "storage")),
        worker=WorkerSettings(cache_dir=tmp_path / "cache", shutdown_grace_seconds=1),
    )


@pytest.fixture
def host() -> PluginHost:
    plugins = load_plugins(PluginSettings(allow=["forge_docker"]))
    plugins.admit(acme_forge_artifacts, PluginInfo("acme_artifacts", None, None))
    return plugins


class HookedStore(FsspecStore):
    """Object storage whose log sinks also call ``hook`` with every line (to act mid-publish)."""

    hook: Callable[[str], None] = staticmethod(lambda line: None)

    @contextmanager
    def open_log(self, key: str, secrets: tuple[str, ...] = ()) -> Iterator[Any]:
        with super().open_log(key, secrets) as sink:
            write = sink.write_line

            def hooked(line: str) -> None:
                write(line)
                self.hook(line)

            sink.write_line = hooked
            yield sink


def artifact(registry: str, shelf: Path, *, credentials: dict[str, SecretRef] | None = None,
             **producer: Any) -> ArtifactPlan:
    return ArtifactPlan(
        project=ProjectRef(name="svc", path="svc"),
        spec=ArtifactSpec(name="image", type="container", producer="acme-layout",
                          producer_settings={"files": FILES, **producer}, publishers=("registry", "shelf")),
        publishers=(
            PublishTarget(name="registry", type="docker", settings={"registry": registry, "namespace": "acme"},
                          credentials=credentials or {}),
            PublishTarget(name="shelf", type="shelf", settings={"folder": str(shelf)}),
        ),
    )


class Stage:
    """One run with a plan of ``artifacts`` and the artifact worker; ``job()`` dispatches one."""

    def __init__(self, settings: Settings, host: PluginHost, storage: FsspecStore, repo: Path, commit: str) -> None:
        self.settings, self.host, self.storage, self.repo, self.commit = settings, host, storage, repo, commit
        self.deliveries = 0

    def run(self, artifacts: list[ArtifactPlan], *batches: bool) -> tuple[list[JobResult], schemas.Run]:
        """Record a run planning ``artifacts``, then one artifact job per artifact for each entry
        of ``batches`` (publish or not), in order; the results and the run as the API returns it."""
        return asyncio.run(self._run(artifacts, batches))

    async def _run(self, artifacts: list[ArtifactPlan], batches: tuple[bool, ...]) -> tuple[list[JobResult], Any]:
        async with platform_client(self.settings, self.host) as client:
            create = schemas.RunCreate(repository="local/mono", commit_sha=self.commit, triggered_by="t")
            run_id = str((await client.create_run(create)).id)
            await client.record_plan(run_id, RunPlan(artifacts=tuple(artifacts)).model_dump(mode="json"))
            results = []
            async with embedded_jobs(self.settings, self.host, client, self.storage, state_dir=self.settings.state_dir,
                                     job_types=("artifact",)) as dispatcher:
                for publish in batches:
                    for plan in artifacts:
                        results.append(await dispatcher.dispatch(self._job(run_id, plan, publish), 120))
            return results, await client.get_run(run_id)

    def _job(self, run_id: str, plan: ArtifactPlan, publish: bool) -> Job:
        self.deliveries += 1  # a re-run is a new job (the same job again is answered from its stored result)
        payload = ArtifactJobPayload(
            artifact=plan, publish=publish,
            source=ArtifactSource(repository=str(self.repo), commit=self.commit, branch="main"),
        )
        return Job(id=f"artifact-{run_id}-{payload.artifact_id}-{self.deliveries}", type="artifact", run_id=run_id,
                   payload=payload.model_dump(mode="json"))


@pytest.fixture
def stage(settings: Settings, host: PluginHost, monorepo: tuple[Path, str]) -> Stage:
    storage = HookedStore.from_settings(settings.storage)
    assert isinstance(storage, HookedStore)
    return Stage(settings, host, storage, *monorepo)


def shelf_calls(shelf: Path) -> list[dict[str, Any]]:
    calls = shelf / "calls.jsonl"
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def tag_digest(registry: str, repository: str, tag: str) -> str | None:
    response = httpx.head(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def target(record: schemas.ArtifactRecord, name: str) -> schemas.ArtifactTarget:
    return next(t for t in record.targets if t.publisher == name)


def test_plan_only_contacts_no_publisher_and_records_where_it_would_go(stage: Stage, tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there: planning must not try
    results, run = stage.run([artifact(closed, tmp_path / "shelf")], False)
    assert [r.status.value for r in results] == ["success"], results[0].error
    (record,) = run.artifact_records
    assert (record.project, record.artifact, record.status.value) == ("svc", "image", "success")
    assert record.digest and record.digest.startswith("sha256:")
    registry = target(record, "registry")
    assert registry.outcome is schemas.TargetOutcome.PLANNED
    assert registry.uri == f"{closed}/acme/image:sha-{stage.commit}@{record.digest}"
    shelf = target(record, "shelf")
    assert (shelf.outcome, shelf.note) == (schemas.TargetOutcome.NOT_PLANNED, "cannot plan; use --publish")
    assert shelf_calls(tmp_path / "shelf") == []
    assert record.primary_published_uri is None


def test_publish_pushes_to_the_registry_and_calls_the_third_party_publisher_then_a_rerun_publishes_nothing(
    stage: Stage, oci_registry: RegistryServer, tmp_path: Path
) -> None:
    shelf = tmp_path / "shelf"
    results, run = stage.run([artifact(oci_registry.address, shelf)], True, True)
    assert [r.status.value for r in results] == ["success", "success"], [r.error for r in results]
    (record,) = run.artifact_records
    assert record.status is schemas.ArtifactStatus.SUCCESS
    assert tag_digest(oci_registry.address, "acme/image", f"sha-{stage.commit}") == record.digest
    registry = target(record, "registry")
    assert (registry.outcome, registry.digest) == (schemas.TargetOutcome.PUBLISHED, record.digest)
    assert record.primary_published_uri == registry.uri
    # The third party's publisher was called once, with the artifact as produced; the re-run
    # found both targets recorded with this digest and published nothing again.
    calls = shelf_calls(shelf)
    assert calls == [{
        "name": "image", "type": "container", "project": "svc", "commit": stage.commit, "digest": record.digest,
        "reference": calls[0]["reference"], "files": [], "secrets": [],
    }]
    assert calls[0]["reference"].startswith("oci-layout:") and calls[0]["reference"].endswith(":latest")
    assert target(record, "shelf").outcome is schemas.TargetOutcome.PUBLISHED
    assert results[1].output["record"]["targets"] == results[0].output["record"]["targets"]
    # The tracking image: in the embedded layout store, signed with this machine's key, naming
    # where the image went; listed among the published image's referrers. The re-run kept it.
    layouts = stage.settings.oci.layout_dir
    assert record.tracking_oci_uri == f"oci-layout:{layouts}/mono/svc/image:sha-{stage.commit}"
    assert results[1].output["record"]["tracking_oci_digest"] == record.tracking_oci_digest
    tracked = read_tracking_image(embedded_store(stage.settings.oci), "mono/svc/image", f"sha-{stage.commit}",
                                  load_verifier(stage.settings))
    assert tracked.digest == record.tracking_oci_digest and tracked.signature is True
    assert (tracked.metadata.commit, tracked.metadata.run_id, tracked.metadata.digest) == (
        stage.commit, str(run.id), record.digest)
    assert {location.uri for location in tracked.metadata.published} == {registry.uri, target(record, "shelf").uri}
    store = open_store(RegistryReference(oci_registry.address, "acme/image"))
    (referrer,) = store.referrers("acme/image", record.digest or "")
    attached = store.fetch_manifest("acme/image", referrer.digest).document
    layout = embedded_store(stage.settings.oci).fetch_manifest("mono/svc/image", f"sha-{stage.commit}").document
    assert isinstance(attached, Manifest) and isinstance(layout, Manifest)
    assert attached.subject is not None and attached.subject.digest == record.digest
    assert [d.digest for d in attached.layers] == [d.digest for d in layout.layers]  # the same content


def test_a_registry_down_mid_push_fails_the_artifact_naming_it_and_a_rerun_publishes_only_what_failed(
    stage: Stage, tmp_path: Path
) -> None:
    registry = RegistryServer(tmp_path / "registry").start()
    shelf = tmp_path / "shelf"
    assert isinstance(stage.storage, HookedStore)
    try:
        def stop_mid_push(line: str) -> None:
            if "uploaded" in line and registry._process is not None:  # the first blob is in
                registry.stop()

        stage.storage.hook = stop_mid_push
        plan = artifact(registry.address, shelf)
        results, run = stage.run([plan], True)
        (failed,) = results
        assert failed.status.value == "failed"
        assert "target 'registry' (docker)" in (failed.error or "") and registry.address in (failed.error or "")
        (record,) = run.artifact_records
        assert record.status is schemas.ArtifactStatus.FAILED
        assert registry.address in (record.error or "")
        assert target(record, "registry").outcome is schemas.TargetOutcome.FAILED
        assert record.primary_published_uri == target(record, "shelf").uri  # the other target still ran
        assert len(shelf_calls(shelf)) == 1

        stage.storage.hook = lambda line: None
        registry.start()
        assert tag_digest(registry.address, "acme/image", f"sha-{stage.commit}") is None  # no tag was set
        again = asyncio.run(_rerun(stage, plan, run))
        assert again.status.value == "success", again.error
        assert tag_digest(registry.address, "acme/image", f"sha-{stage.commit}") == record.digest
        assert len(shelf_calls(shelf)) == 1  # published already: not called again
    finally:
        registry.stop()


async def _rerun(stage: Stage, plan: ArtifactPlan, run: schemas.Run) -> JobResult:
    """The artifact job of ``run`` dispatched once more (a re-run of the run's artifact stage)."""
    async with platform_client(stage.settings, stage.host) as client:
        async with embedded_jobs(stage.settings, stage.host, client, stage.storage, state_dir=stage.settings.state_dir,
                                 job_types=("artifact",)) as dispatcher:
            result = await dispatcher.dispatch(stage._job(str(run.id), plan, True), 120)
        record = (await client.get_run(str(run.id))).artifact_records[0]
        assert record.status.value == result.status.value
        return result


def test_refused_credentials_fail_the_target_with_a_clear_error_and_the_secret_is_never_shown(
    stage: Stage, oci_registry_basic: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-password-" + "7" * 12
    monkeypatch.setenv("ACME_REGISTRY_USER", USER)
    monkeypatch.setenv("ACME_REGISTRY_PASSWORD", wrong)
    credentials = {"username": SecretRef(provider="env", path="ACME_REGISTRY_USER"),
                   "password": SecretRef(provider="env", path="ACME_REGISTRY_PASSWORD")}
    plan = artifact(oci_registry_basic.address, tmp_path / "shelf", credentials=credentials)
    (result,), run = stage.run([plan], True)
    assert result.status.value == "failed"
    (record,) = run.artifact_records
    error = target(record, "registry").error or ""
    assert "target 'registry' (docker)" in error and oci_registry_basic.address in error
    assert any(word in error.lower() for word in ("refused", "denied", "unauthorized", "401")), error
    logs = Path(stage.settings.storage.url) / "logs" / str(run.id)
    written = "".join(p.read_text() for p in logs.rglob("*.log"))
    assert "target 'registry'" in written
    for shown in (error, record.error or "", result.error or "", json.dumps(result.output), written):
        assert wrong not in shown


def test_a_producer_that_does_not_write_a_declared_output_fails_the_artifact_naming_it(
    stage: Stage, tmp_path: Path
) -> None:
    plan = artifact(f"127.0.0.1:{free_port()}", tmp_path / "shelf")
    plan = plan.model_copy(update={"spec": plan.spec.model_copy(update={"type": "archive"})})
    plan = plan.model_copy(update={"spec": plan.spec.model_copy(
        update={"producer_settings": {**plan.spec.producer_settings, "forget": True}}
    )})
    (result,), run = stage.run([plan], True)
    assert result.status.value == "failed"
    assert "did not write its output file" in (result.error or "") and "forgotten.txt" in (result.error or "")
    (record,) = run.artifact_records
    assert record.status is schemas.ArtifactStatus.FAILED and "forgotten.txt" in (record.error or "")
    assert record.targets == [] and shelf_calls(tmp_path / "shelf") == []
