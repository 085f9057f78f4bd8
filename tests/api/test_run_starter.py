"""The run starter: every new run is handed to the orchestrator once, even with two API replicas
on one database racing for it; a run that cannot start is closed failed with the reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.services import schemas as s
from forge_core.services.run_starter import RunStarter

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
