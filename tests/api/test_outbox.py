"""Commit statuses: queued in the outbox while GitHub is down, then delivered in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import platform_key
from forge_core.adapters.db.engine import create_engine
from forge_core.adapters.db.store import SqlStore
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.ports.protocols import NotifierOptions
from forge_core.services.outbox import OutboxSender, SenderConfig
from forge_core.settings.database import DatabaseSettings
from forge_github.testing import GithubStandIn  # the workspace installs every plugin: never skipped

from .conftest import Api, LocalIssuer, make_settings, new_sha, unique_repo

TOKEN = "gh-s3cret"


@pytest.fixture
def github() -> Iterator[GithubStandIn]:
    with GithubStandIn(token=TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def notifying_api(
    database_url: str,
    tmp_path: Path,
    oidc_issuer: str,
    github_issuer: LocalIssuer,
    github: GithubStandIn,
) -> Iterator[Api]:
    notifier = {
        "type": "github",
        "options": {"api_url": github.url, "timeout": 2},
        "token": TOKEN,
        "target_url": "http://forge.local/runs/{run_id}",
        "poll_seconds": 0.05,
        "min_backoff_seconds": 0.05,
        "max_backoff_seconds": 0.2,
    }
    settings = make_settings(
        database_url, tmp_path, oidc_issuer, github_issuer.url, notifier=notifier
    )
    with TestClient(create_app(settings, load_plugins(settings.plugins))) as client:
        yield Api(client, settings, platform_key(settings))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def pending(api: Api) -> float:
    text = api.client.get("/metrics", headers=api.as_admin()).text
    line = next(line for line in text.splitlines() if line.startswith("forge_outbox_pending "))
    return float(line.split()[1])


def test_statuses_reach_github_with_the_run_link(notifying_api: Api, github: GithubStandIn) -> None:
    api = notifying_api
    repository, sha = unique_repo(), new_sha()
    body = {"repository": repository, "commit_sha": sha, "triggered_by": "a"}
    run = api.post("/v1/runs", json=body).json()
    wait_for(lambda: len(github.received(repository, sha)) == 1)
    status = github.received(repository, sha)[0]
    assert (status["state"], status["context"]) == ("pending", "catalyst-forge")
    assert status["target_url"] == f"http://forge.local/runs/{run['id']}"


def test_statuses_queue_while_github_is_down_and_arrive_in_order(
    notifying_api: Api, github: GithubStandIn
) -> None:
    api = notifying_api
    github.stop()
    commits = {unique_repo(): ("success", new_sha()), unique_repo(): ("failed", new_sha())}
    for repository, (final, sha) in commits.items():
        body = {"repository": repository, "commit_sha": sha, "triggered_by": "a"}
        run = api.post("/v1/runs", json=body).json()
        for status in ("running", final):
            update = api.put(f"/v1/runs/{run['id']}/status", "worker", json={"status": status})
            assert update.status_code == 200
    time.sleep(0.5)  # several delivery attempts fail meanwhile
    assert pending(api) >= 6
    github.start()
    expected = {
        "success": ["pending", "pending", "success"],
        "failed": ["pending", "pending", "failure"],
    }
    for repository, (final, sha) in commits.items():
        wait_for(lambda r=repository, s=sha: len(github.received(r, s)) == 3)
        received = github.received(repository, sha)
        assert [s["state"] for s in received] == expected[final]
        assert [s["description"] for s in received][:2] == ["Pipeline queued", "Pipeline running"]
    wait_for(lambda: pending(api) == 0)


def test_one_sender_at_a_time_delivers(database_url: str, tmp_path: Path) -> None:
    async def turns() -> tuple[bool, bool, bool]:
        settings = DatabaseSettings(url=database_url, state_dir=tmp_path)
        engines = [create_engine(settings), create_engine(settings)]
        first, second = (SqlStore(engine) for engine in engines)
        async with first.outbox_turn() as mine, second.outbox_turn() as theirs:
            pass
        async with second.outbox_turn() as later:
            pass
        for engine in engines:
            await engine.dispose()
        return mine, theirs, later

    mine, theirs, later = asyncio.run(turns())
    assert mine
    assert later  # the turn passes on once released
    # PostgreSQL serves several API replicas: only one sends; SQLite has a single process.
    assert theirs is database_url.startswith("sqlite")


def test_delivered_statuses_are_purged_once_kept_long_enough(api: Api, database_url: str, tmp_path: Path) -> None:
    repository = unique_repo()
    for _ in range(3):
        body = {"repository": repository, "commit_sha": new_sha(), "triggered_by": "a"}
        assert api.post("/v1/runs", json=body).status_code == 201

    class Unused:
        def send_commit_status(self, status: object, options: object) -> None:
            raise AssertionError("purging sends nothing")

    async def scenario() -> tuple[int, int, list[int]]:
        engine = create_engine(DatabaseSettings(url=database_url, state_dir=tmp_path))
        store = SqlStore(engine)
        now = datetime.now(UTC)
        ours = [m for m in await store.claim_outbox(now, 100_000) if m.payload["repository"] == repository]
        old, recent, _undelivered = sorted(ours, key=lambda m: m.id)
        await store.outbox_delivered(old.id, now - timedelta(days=8))
        await store.outbox_delivered(recent.id, now - timedelta(days=1))
        sender = OutboxSender(store, Unused(), NotifierOptions(), SenderConfig(keep_delivered=timedelta(days=7)))
        purged = await sender.purge()
        again = await sender.purge()
        left = [m.id for m in ours if await _exists(engine, m.id)]
        await engine.dispose()
        return purged, again, left

    purged, again, left = asyncio.run(scenario())
    assert (purged, again) == (1, 0)
    assert len(left) == 2, "only the status delivered 8 days ago goes; the recent and the undelivered stay"


async def _exists(engine: Any, message_id: int) -> bool:
    from sqlalchemy import select

    from forge_core.adapters.db import models as m

    async with engine.connect() as connection:
        return (await connection.scalar(select(m.OutboxMessage.id).where(m.OutboxMessage.id == message_id))) is not None
