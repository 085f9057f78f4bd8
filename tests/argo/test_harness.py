"""A generated Workflow played end to end by the controller harness against the real NATS, the
Platform API and workers (processes), ending in the same run state as the embedded orchestrator
on the same plan: the example monorepo at its release tag (api/v1.2.0)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parents[1] / "chart"))
sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))

import chart_support
from make_example import make_example

from forge_core.adapters.argo.client import ArgoClient
from forge_core.adapters.argo.orchestrator import ArgoOrchestrator
from forge_core.adapters.argo.workflow import workflow_name
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.dispatcher import NatsDispatcher
from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.jobs import ArtifactSource, SourceRef
from forge_core.domain.plan import DiscoveryDocument
from forge_core.services import schemas
from forge_core.services.orchestrator import EmbeddedOrchestrator
from forge_core.services.run_launch import releasing_stage
from forge_core.settings import load_settings
from forge_core.settings.orchestrator import ArgoSettings
from forge_core.testing.argo import ArgoServerStandIn
from forge_core.testing.argo_controller import Controller
from forge_core.testing.registry import free_port

from .conftest import TOKEN

FORGE = str(Path(sys.executable).parent / "forge")


def forge(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([FORGE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def storage_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where logs and large results go: the state folder (default), or with the parameter ``s3``
    a bucket of a moto S3 server, as a fleet keeps them (fsspec's s3 file system)."""
    if getattr(request, "param", "local") != "s3":
        yield {}
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="fleet",
                     aws_secret_access_key="fleet-secret").create_bucket(Bucket="forge-fleet")
        yield {"FORGE_STORAGE__URL": "s3://forge-fleet/runs", "AWS_ACCESS_KEY_ID": "fleet",
               "AWS_SECRET_ACCESS_KEY": "fleet-secret", "AWS_DEFAULT_REGION": "us-east-1",
               "FORGE_STORAGE__OPTIONS": json.dumps({"endpoint_url": endpoint}), "S3_ENDPOINT": endpoint}
    finally:
        server.stop()


@pytest.fixture
def platform(tmp_path: Path, prefix: str, storage_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """``forge api`` and one ``forge worker`` per job type, as processes; the API's URL and the
    environment of a pod (NATS, storage, the API with a worker token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "state"), FORGE_NATS__URL="nats://127.0.0.1:4222",
               FORGE_NATS__PREFIX=prefix, FORGE_WORKER__CACHE_DIR=str(tmp_path / "cache"), **storage_env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # workers read artifact records too (the artifact job keeps what an earlier attempt pushed)
    # (and, as the chart's tokens: release workers make releases, the deploy task creates deployments)
    worker_token = forge(env, "token", "create", "--role", "worker", "--role", "viewer", "--role", "releaser",
                         "--role", "deployer", "--ttl", "7200").strip()
    env.update(FORGE_API__TOKEN=worker_token)
    processes = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        with (logs / "api.log").open("w") as out:
            processes.append(subprocess.Popen([FORGE, "api", "--port", str(port)], env=env, stdout=out,
                                              stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            assert time.monotonic() < deadline, (logs / "api.log").read_text()
        env.update(FORGE_API__URL=url)
        for job_type in ("discovery", "ci", "artifact", "release", "deployment"):
            with (logs / f"{job_type}.log").open("w") as out:
                processes.append(subprocess.Popen([FORGE, "worker", "--type", job_type], env=env, stdout=out,
                                                  stderr=subprocess.STDOUT))
        yield url, env
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def dispatch_template() -> dict[str, Any]:
    (template,) = [m for m in chart_support.manifests() if m["kind"] == "WorkflowTemplate"]
    return template


def tree(run: dict[str, Any]) -> dict[str, Any]:
    """A run's final state, without ids and times: what both orchestrators must agree on."""
    return {
        "status": run["status"], "error": run["error"],
        "phases": {p["name"]: (p["status"], {t["key"]: (t["status"], [s["status"] for s in t["steps"]])
                                             for t in p["tasks"]}) for p in run["phases"]},
        "artifacts": sorted((r["project"], r["artifact"], r["status"]) for r in run.get("artifact_records", [])),
    }


def execute(
    kind: str, repository: str, url: str, env: dict[str, str], argo: ArgoServerStandIn, repo: Path,
    exit_code: Callable[[str, int, int], int] | None = None,
) -> tuple[dict[str, Any], Controller]:
    """Record a run of ``repo``'s HEAD (api/v1.2.0) as ``repository`` and execute it with the
    ``argo`` orchestrator (the harness playing the controller) or the ``embedded`` one."""
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    document = DiscoveryDocument.model_validate_json(
        forge(env, "discover", str(repo), "--tag", "api/v1.2.0", "--branch", "main", "--json"))
    admin = forge(env, "token", "create", "--role", "admin").strip()
    settings = ArgoSettings(url=argo.url, token=SecretStr(TOKEN), poll_interval=0.1, exit_grace_seconds=3)
    controller = Controller(argo, [dispatch_template()], {**env, "FORGE_BIN": FORGE}, exit_code=exit_code)
    local = load_settings(nats={"url": "nats://127.0.0.1:4222", "prefix": env["FORGE_NATS__PREFIX"]},
                          state_dir=env["FORGE_STATE_DIR"])

    async def one() -> dict[str, Any]:
        async with PlatformClient(url, admin) as client:
            run = await client.create_run(schemas.RunCreate(
                repository=repository, commit_sha=commit, branch="main", tag="api/v1.2.0", triggered_by="t",
                trigger_type=schemas.TriggerType.TAG))
            run_id = str(run.id)
            recorded = await client.record_plan(run_id, document.run_plan().model_dump(mode="json"))
            source = SourceRef(repository=str(repo), commit=commit)
            stage = releasing_stage(document, ArtifactSource(repository=str(repo), commit=commit, branch="main",
                                                             tag="api/v1.2.0", identity=repository), False, "t")
            async with PlatformClient(url, env["FORGE_API__TOKEN"]) as recorder:
                if kind == "argo":
                    name = workflow_name(run_id)

                    def play() -> None:
                        argo.wait_for(lambda: ("forge", name) in argo.workflows, 30)
                        controller.play(name)

                    playing = threading.Thread(target=play, daemon=True)
                    playing.start()
                    argo_client = ArgoClient(settings)
                    try:
                        await ArgoOrchestrator(argo_client, recorder, settings).execute(
                            run_id, recorded, source, artifacts=stage)
                    finally:
                        await argo_client.close()
                    playing.join(60)
                else:
                    bus = await connect(local.nats)
                    try:
                        dispatcher = NatsDispatcher(bus, local.nats, FsspecStore.from_settings(local.storage))
                        await EmbeddedOrchestrator(dispatcher, recorder).execute(
                            run_id, recorded, source, artifacts=stage)
                    finally:
                        await bus.close()
            final = await client.get_run(run_id)
            return dict(json.loads(final.model_dump_json()))

    return asyncio.run(one()), controller


def test_a_generated_workflow_played_by_the_harness_ends_like_the_embedded_orchestrator(
    platform: tuple[str, dict[str, str]], argo: ArgoServerStandIn, tmp_path: Path,
) -> None:
    url, env = platform
    repo = make_example(tmp_path / "acme")
    argo_run, controller = execute("argo", "acme/argo", url, env, argo, repo)
    embedded_run, _ = execute("embedded", "acme/embedded", url, env, argo, repo)

    assert tree(argo_run) == tree(embedded_run)
    assert argo_run["status"] == "success", argo_run["error"]
    assert tree(argo_run)["phases"]["test"][1]["api/test"][0] == "success"
    assert ("api", "api", "success") in tree(argo_run)["artifacts"]
    assert controller.attempts["close-run"] == 1  # the Workflow's own closing task ran once


def released(url: str, env: dict[str, str], repository: str) -> dict[str, Any]:
    """What the release and deployment stages left for ``repository``: its releases (project,
    number, aliases) and deployments (project, number, environment, status)."""
    admin = forge(env, "token", "create", "--role", "admin").strip()

    async def read() -> dict[str, Any]:
        async with PlatformClient(url, admin) as client:
            listing = await client.list_releases(repository)
            releases = []
            for summary in listing.releases:
                found = await client.show_release(repository, summary.project, str(summary.release_number))
                releases.append((found.project, found.release_number, sorted(a.alias for a in found.aliases)))
            deployments = (await client.list_deployments(repository)).deployments
            return {"releases": sorted(releases),
                    "deployments": sorted((d.project, d.release_number, d.environment, d.status.value)
                                          for d in deployments)}

    return asyncio.run(read())


def test_at_a_release_tag_the_workflow_releases_and_deploys_like_forge_run(
    platform: tuple[str, dict[str, str]], argo: ArgoServerStandIn, tmp_path: Path,
) -> None:
    """The example at api/v1.2.0: the Workflow's artifact, release and deploy tasks end where
    `forge run` of the same commit ends — the same tasks, artifacts, release number and aliases,
    and the release active in dev through a GitOps commit."""
    url, env = platform
    repo = make_example(tmp_path / "acme")
    argo_run, controller = execute("argo", "acme/argo", url, env, argo, repo)
    assert argo_run["status"] == "success", (argo_run["error"], controller.logs)
    workflow = argo.workflow(workflow_name(str(argo_run["id"])))
    assert workflow is not None
    (dag,) = [t["dag"] for t in workflow["spec"]["templates"] if t["name"] == "run"]
    order = {t["name"]: t.get("depends", "") for t in dag["tasks"]}
    assert order["release-api"].startswith("artifact-") and order["deploy"] == "release-api.Succeeded"
    assert order["close-run"] == "deploy.Succeeded"
    assert controller.attempts["release-api"] == controller.attempts["deploy"] == 1

    # forge run of the same commit on the same API, bus and GitOps repository (as local/acme)
    admin = forge(env, "token", "create", "--role", "admin").strip()
    ran = subprocess.run([FORGE, "run", str(repo), "--tag", "api/v1.2.0", "--branch", "main"],
                         env={**env, "FORGE_API__TOKEN": admin, "COLUMNS": "200"}, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    listing = httpx.get(f"{url}/v1/runs", params={"repository": "local/acme"},
                        headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    (summary,) = listing["runs"]
    local_run = httpx.get(f"{url}/v1/runs/{summary['id']}", headers={"Authorization": f"Bearer {admin}"},
                          timeout=10).json()

    assert tree(argo_run) == tree(local_run)
    fleet, local = released(url, env, "acme/argo"), released(url, env, "local/acme")
    assert fleet == local
    assert fleet["releases"] == [("api", 1, ["1", "1.2.0", "api/v1.2.0", "main-1"])]
    assert fleet["deployments"] == [("api", 1, "dev", "active")]


@pytest.mark.parametrize("storage_env", ["s3"], indirect=True)
def test_in_a_fleet_the_step_logs_go_to_s3_through_fsspec(
    platform: tuple[str, dict[str, str]], argo: ArgoServerStandIn, tmp_path: Path, storage_env: dict[str, str],
) -> None:
    url, env = platform
    repo = make_example(tmp_path / "acme")
    run, _ = execute("argo", "acme/fleet", url, env, argo, repo)
    assert run["status"] == "success", run["error"]
    import boto3

    s3 = boto3.client("s3", endpoint_url=storage_env["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id="fleet", aws_secret_access_key="fleet-secret")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="forge-fleet", Prefix=f"runs/logs/{run['id']}/")
            .get("Contents", [])]
    assert keys, "no step log in the bucket"
    logs = forge(env, "logs", str(run["id"]), "--task", "api/test")
    assert "OK" in logs  # read back from S3: unittest's own summary
    assert not (Path(env["FORGE_STATE_DIR"]) / "forge" / "storage" / "logs").exists()


def test_a_dispatcher_pod_retried_by_argo_gets_the_answer_without_the_job_running_twice(
    platform: tuple[str, dict[str, str]], argo: ArgoServerStandIn, tmp_path: Path,
) -> None:
    """The first dispatcher of api/test ran its job, then its pod was lost (exit 7, which the
    chart's template retries): the retry publishes the same job id, and the worker answers it
    from the stored result instead of running the task again."""
    url, env = platform
    repo = make_example(tmp_path / "acme")
    retried: list[str] = []

    def lost_once(task: str, attempt: int, code: int) -> int:
        if task.startswith("api-test-") and attempt == 0:
            retried.append(task)
            return 7
        return code

    run, controller = execute("argo", "acme/retried", url, env, argo, repo, exit_code=lost_once)

    assert run["status"] == "success", run["error"]
    (task,) = retried
    assert controller.attempts[task] == 2
    ci_log = (tmp_path / "logs" / "ci.log").read_text()
    answered = [line for line in ci_log.splitlines() if "already finished; answering from its stored result" in line]
    assert len(answered) == 1, ci_log[-3000:]
    steps = next(t for p in run["phases"] for t in p["tasks"] if t["key"] == "api/test")["steps"]
    assert [s["status"] for s in steps] == ["success"] * len(steps)
