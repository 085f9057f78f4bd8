"""The run starter: every new run is handed to the orchestrator once, even with two API replicas
on one database racing for it; a run that cannot start is closed failed with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_core.api.app import create_app
from forge_core.domain.errors import ConfigurationError
from forge_core.plugin.host import load_plugins
from forge_core.services import schemas as s
from forge_core.services.run_starter import RunStarter
from forge_core.settings import load_settings
from forge_core.testing.argo import ArgoServerStandIn, argo_server, workflow_validator

from .conftest import Api, create_run, make_settings, new_sha, unique_repo
from .issuer import LocalIssuer
from .test_webhooks import deliver, push, signed


class Launches:
    """A launcher recording what it was given; ``refuse`` makes it fail as an orchestrator would."""

    def __init__(self, refuse: str | None = None) -> None:
        self.runs: list[Any] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    async def launch(self, run: s.RunSummary) -> None:
        with self.lock:
            self.runs.append(run.id)
        if self.refuse:
            raise RuntimeError(self.refuse)


@pytest.fixture
def replica(
    api: Api, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer,
) -> Iterator[TestClient]:
    """A second API app on the same database as ``api``."""
    settings = make_settings(str(api.settings.database.url), tmp_path, oidc_issuer, github_issuer.url)
    with TestClient(create_app(settings, load_plugins(settings.plugins)), raise_server_exceptions=False) as client:
        yield client


def starter_of(client: TestClient, launcher: Launches, owner: str, **options: Any) -> RunStarter:
    return RunStarter(client.app.state.services.store, launcher, owner=owner, **options)  # type: ignore[attr-defined]


def drain(client: TestClient, starter: RunStarter, claimed: list[Any]) -> None:
    while (run := client.portal.call(starter.step)) is not None:  # type: ignore[union-attr]
        claimed.append(run.id)


def test_two_replicas_each_given_every_push_start_each_run_once(api: Api, replica: TestClient) -> None:
    repository = unique_repo()
    shas = [new_sha() for _ in range(8)]
    for sha in shas:  # GitHub delivers to whichever replica; here both get every delivery
        body = push(repository, sha)
        assert deliver(api, body, signature=signed(body)).status_code == 201
        again = replica.post("/v1/webhooks/github", content=body, headers={
            "X-GitHub-Event": "push", "Content-Type": "application/json", "X-Hub-Signature-256": signed(body)})
        assert again.status_code == 200
    created = {run["id"] for run in api.get("/v1/runs", params={"repository": repository}).json()["runs"]}
    assert len(created) == len(shas)

    launcher = Launches()
    starters = [(api.client, starter_of(api.client, launcher, "replica-a")),
                (replica, starter_of(replica, launcher, "replica-b"))]
    claimed: list[list[Any]] = [[], []]
    threads = [threading.Thread(target=drain, args=(client, starter, claimed[i]))
               for i, (client, starter) in enumerate(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    mine = [str(run_id) for run_id in launcher.runs if str(run_id) in created]
    assert sorted(mine) == sorted(created)  # every run started, none twice
    assert len(mine) == len(set(mine))
    both = [str(r) for r in claimed[0] + claimed[1] if str(r) in created]
    assert sorted(both) == sorted(created)


def test_a_run_that_cannot_start_is_failed_with_the_reason(api: Api) -> None:
    run = create_run(api)
    launcher = Launches(refuse="the Argo Server is unreachable")
    starter = starter_of(api.client, launcher, "solo")
    while api.client.portal.call(starter.step) is not None:  # type: ignore[union-attr]
        pass
    assert run["id"] in {str(r) for r in launcher.runs}
    closed = api.get(f"/v1/runs/{run['id']}").json()
    assert closed["status"] == "failed"
    assert closed["error"] == "cannot start the run: RuntimeError: the Argo Server is unreachable"


def test_a_stale_claim_is_taken_again_and_a_fresh_one_is_not(api: Api) -> None:
    run = create_run(api)
    launcher = Launches()
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    dead = starter_of(api.client, Launches(), "dead", clock=lambda: long_ago)
    store = api.client.app.state.services.store  # type: ignore[attr-defined]
    # the dead starter claimed every pending run long ago and never launched them
    while api.client.portal.call(store.claim_run, "dead", long_ago, long_ago - timedelta(days=1)) is not None:
        pass
    fresh = starter_of(api.client, launcher, "fresh", stale_after=timedelta(days=36500))
    assert api.client.portal.call(fresh.step) is None  # claims are not stale for a century
    assert dead.owner == "dead"
    later = starter_of(api.client, launcher, "later", stale_after=timedelta(minutes=10))
    taken = []
    while (got := api.client.portal.call(later.step)) is not None:  # type: ignore[union-attr]
        taken.append(str(got.id))
    assert run["id"] in taken


# --- the fleet: each API replica starts runs on Argo Workflows ------------------------------------


ROOT = Path(__file__).resolve().parents[2]
FORGE = str(Path(sys.executable).parent / "forge")
ARGO_TOKEN = "argo-fleet-token"


@pytest.fixture
def bare_example(tmp_path: Path) -> tuple[str, str]:
    """The example monorepo as a bare repository behind a ``file://`` URL; the URL and HEAD."""
    sys.path.insert(0, str(ROOT / "examples"))
    from make_example import make_example

    bare = tmp_path / "remote" / "monorepo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(make_example(tmp_path / "acme")), str(bare)], check=True)
    head = subprocess.run(["git", "-C", str(bare), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    return f"file://{bare}", head


@pytest.fixture
def discovery_worker(tmp_path: Path, prefix: str) -> Iterator[Path]:
    """A fleet's discovery worker (``forge worker --type discovery``) on the shared NATS; its log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "worker-state"), FORGE_WORKER__CACHE_DIR=str(tmp_path / "cache"),
               FORGE_NATS__URL="nats://127.0.0.1:4222", FORGE_NATS__PREFIX=prefix,
               FORGE_API__URL="http://127.0.0.1:9", FORGE_API__TOKEN="unused-by-discovery")
    log = tmp_path / "discovery.log"
    with log.open("w") as out:
        process = subprocess.Popen([FORGE, "worker", "--type", "discovery"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def fleet_settings(api: Api, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer, prefix: str,
                   argo: ArgoServerStandIn, name: str) -> Any:
    """A replica's settings: the same database as ``api``, Argo Workflows as the orchestrator."""
    base = make_settings(str(api.settings.database.url), tmp_path / name, oidc_issuer, github_issuer.url)
    return base.model_copy(update={
        "nats": base.nats.model_copy(update={"url": "nats://127.0.0.1:4222", "prefix": prefix}),
        "orchestrator": load_settings(orchestrator={
            "kind": "argo", "argo": {"url": argo.url, "token": ARGO_TOKEN, "poll_interval": 0.1}}).orchestrator,
        "server": base.server.model_copy(update={"poll_seconds": 0.2}),
    })


def github_push(repository: str, clone_url: str, sha: str) -> bytes:
    """A push as GitHub sends it (the fields of its documented example that matter here)."""
    owner, name = repository.split("/")
    return json.dumps({
        "ref": "refs/heads/main", "before": "0" * 39 + "1", "after": sha, "created": False, "deleted": False,
        "forced": False, "base_ref": None, "compare": f"https://github.com/{repository}/compare/x...y",
        "commits": [{"id": sha, "distinct": True, "message": "api: a change"}],
        "head_commit": {"id": sha, "message": "api: a change"},
        "repository": {"id": 1296269, "name": name, "full_name": repository, "private": False,
                       "owner": {"login": owner}, "default_branch": "main", "clone_url": clone_url},
        "pusher": {"name": "octocat", "email": "octocat@github.example"}, "sender": {"login": "octocat"},
    }).encode()


def test_two_api_replicas_on_argo_submit_one_workflow_for_one_delivery(
    api: Api, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer, prefix: str,
    bare_example: tuple[str, str], discovery_worker: Path,
) -> None:
    url, head = bare_example
    repository = unique_repo()
    validate = workflow_validator(Path("/work/shared/schemas/argo-workflows/schema.json"))
    with argo_server(ARGO_TOKEN, validate) as argo:
        replicas = [fleet_settings(api, tmp_path, oidc_issuer, github_issuer, prefix, argo, name)
                    for name in ("replica-a", "replica-b")]
        with (TestClient(create_app(replicas[0], load_plugins(replicas[0].plugins))) as a,
              TestClient(create_app(replicas[1], load_plugins(replicas[1].plugins))) as b):
            body = github_push(repository, url, head)
            headers = {"X-GitHub-Event": "push", "Content-Type": "application/json",
                       "X-Hub-Signature-256": signed(body), "X-GitHub-Delivery": "72d3162e-cc78-11e3"}
            first = a.post("/v1/webhooks/github", content=body, headers=headers)
            assert first.status_code == 201, first.text
            assert b.post("/v1/webhooks/github", content=body, headers=headers).status_code == 200  # redelivered
            run_id = first.json()["id"]
            name = f"forge-run-{run_id}"
            argo.wait_for(lambda: ("forge", name) in argo.workflows, timeout=120)
            workflow = argo.workflow(name)
            assert workflow is not None
            dag = next(t for t in workflow["spec"]["templates"] if t["name"] == "run")["dag"]
            job = json.loads(dag["tasks"][0]["arguments"]["parameters"][0]["value"])
            assert job["payload"] == {"repository": url, "commit": head}  # the webhook's clone URL
            running = api.get(f"/v1/runs/{run_id}").json()
            assert running["status"] == "running" and running["clone_url"] == url
            assert {t["key"] for p in running["phases"] for t in p["tasks"]} >= {"api/test"}
            argo.set_status(name, {"phase": "Succeeded", "nodes": {}})
            deadline = time.monotonic() + 30
            while (closed := api.get(f"/v1/runs/{run_id}").json())["status"] == "running":
                assert time.monotonic() < deadline, "the run was not closed from its Workflow"
                time.sleep(0.2)
            time.sleep(1.0)  # both starters polled several times more
            assert [c for c in argo.calls if c[0] == "POST"] == [("POST", "/api/v1/workflows/forge")]
    assert closed["status"] == "success", closed["error"]


def test_an_api_replica_on_argo_without_nats_refuses_to_start_naming_the_setting(
    api: Api, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer, prefix: str,
) -> None:
    validate = workflow_validator(Path("/work/shared/schemas/argo-workflows/schema.json"))
    with argo_server(ARGO_TOKEN, validate) as argo:
        settings = fleet_settings(api, tmp_path, oidc_issuer, github_issuer, prefix, argo, "no-nats")
        settings = settings.model_copy(update={"nats": settings.nats.model_copy(update={"url": None})})
        with pytest.raises(ConfigurationError, match="FORGE_NATS__URL"), TestClient(
                create_app(settings, load_plugins(settings.plugins))):
            pass
