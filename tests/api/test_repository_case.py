"""Repository names compare without regard to case, as GitHub's do: ``Acme/X`` and ``acme/x``
are one repository (one run per commit, one release numbering, one deployment history), shown
in the case it was first seen in."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from forge_core.adapters.db.engine import create_engine, migrate
from forge_core.settings.database import DatabaseSettings

from .conftest import Api, create_release, create_run, new_sha
from .test_webhooks import deliver, push, signed


def first_seen() -> str:
    return f"Acme/Repo{uuid.uuid4().hex[:8]}"


def test_one_commit_gets_one_run_whatever_the_case(api: Api) -> None:
    name, sha = first_seen(), new_sha()
    run = create_run(api, name, sha)
    again = api.post("/v1/runs", json={"repository": name.lower(), "commit_sha": sha, "triggered_by": "bob",
                                       "branch": "main", "trigger_type": "push"})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["details"]["run_id"] == run["id"]
    later = create_run(api, name.upper(), new_sha())
    assert later["repository"] == name  # the case it was first seen in
    listed = api.get("/v1/runs", params={"repository": name.swapcase()}).json()
    assert listed["total"] == 2 and {r["repository"] for r in listed["runs"]} == {name}


def test_a_webhook_redelivery_in_another_case_returns_the_run(api: Api) -> None:
    name, sha = first_seen(), new_sha()
    run = create_run(api, name, sha)
    body = push(name.lower(), sha)
    answer = deliver(api, body, signature=signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == run["id"]


def test_parallel_creates_in_different_cases_give_one_run(api: Api) -> None:
    name, sha = first_seen(), new_sha()
    spellings = [name, name.lower(), name.upper(), name.swapcase()] * 5

    def create(spelling: str) -> int:
        body = {"repository": spelling, "commit_sha": sha, "triggered_by": "ci", "branch": "main",
                "trigger_type": "push"}
        return api.post("/v1/runs", json=body).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(create, spellings))
    assert statuses == [201] + [409] * (len(spellings) - 1)
    assert api.get("/v1/runs", params={"repository": name}).json()["total"] == 1


def test_releases_and_deployments_are_one_repositorys_whatever_the_case(api: Api) -> None:
    name = first_seen()
    first = create_release(api, name)
    second = create_release(api, name.lower())
    assert (first["release_number"], second["release_number"]) == (1, 2)  # one numbering
    assert second["repository"] == name
    owner, repo = name.lower().split("/")
    listed = api.get(f"/v1/releases/{owner}/{repo}/svc").json()
    assert listed["total"] == 2
    assert api.get(f"/v1/releases/{owner.upper()}/{repo}/svc/1").json()["id"] == first["id"]
    alias = api.put(f"/v1/releases/{owner}/{repo}/svc/aliases/stable", json={"release": "2"})
    assert alias.status_code == 200, alias.text
    assert api.get(f"/v1/releases/{name}/svc/stable").json()["id"] == second["id"]
    deployed = api.post("/v1/deployments", json={"release_id": first["id"], "environment": "dev"})
    assert deployed.status_code == 201, deployed.text
    found = api.get("/v1/deployments", params={"repository": name.upper()}).json()
    assert [d["id"] for d in found["deployments"]] == [deployed.json()["id"]]
    current = api.get(f"/v1/deployments/dev/{owner}/{repo.upper()}/svc")
    assert current.status_code == 200 and current.json()["id"] == deployed.json()["id"]


def test_a_release_may_name_its_run_in_another_case(api: Api) -> None:
    name = first_seen()
    run = create_run(api, name)
    release = create_release(api, name.lower(), pipeline_run_id=run["id"])
    assert release["pipeline_run_id"] == run["id"]


def test_a_token_scoped_in_another_case_reaches_the_repository(api: Api) -> None:
    name = first_seen()
    run = create_run(api, name)
    token = {"Authorization": f"Bearer {api.token('developer', repository=name.lower())}"}
    assert api.client.get(f"/v1/runs/{run['id']}", headers=token).status_code == 200
    listed = api.client.get("/v1/runs", headers=token).json()
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    created = api.client.post("/v1/runs", headers=token, json={
        "repository": name.upper(), "commit_sha": new_sha(), "triggered_by": "ci", "branch": "main",
        "trigger_type": "push"})
    assert created.status_code == 201 and created.json()["repository"] == name


def test_the_migration_brings_rows_written_in_several_cases_to_the_first(tmp_path: Path) -> None:
    """Rows of one repository written in two cases before 0008 end up in the first spelling,
    except a row whose rewrite would break a unique rule (it stays, reachable by id)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"
    ids = [uuid.uuid4().hex for _ in range(3)]
    rows = [(ids[0], "Acme/Old", "a" * 40, "2026-01-01 00:00:00"),  # first seen
            (ids[1], "acme/old", "b" * 40, "2026-02-01 00:00:00"),  # rewritten
            (ids[2], "ACME/OLD", "a" * 40, "2026-03-01 00:00:00")]  # same commit as the first: stays

    async def scenario() -> list[tuple[str, str]]:
        engine = create_engine(DatabaseSettings(url=url, state_dir=tmp_path))
        await migrate(engine, "0006")
        async with engine.begin() as connection:
            for run_id, name, sha, at in rows:
                await connection.execute(text(
                    "INSERT INTO pipeline_runs (id, repository, commit_sha, triggered_by, trigger_type, status, "
                    "created_at) VALUES (:id, :name, :sha, 'ci', 'push', 'success', :at)"),
                    {"id": run_id, "name": name, "sha": sha, "at": at})
        await migrate(engine)
        async with engine.connect() as connection:
            query = text("SELECT id, repository FROM pipeline_runs ORDER BY created_at")
            found = (await connection.execute(query)).all()
            names = (await connection.execute(text("SELECT key, name FROM repositories"))).all()
        await engine.dispose()
        assert [tuple(n) for n in names] == [("acme/old", "Acme/Old")]
        return [tuple(row) for row in found]

    assert asyncio.run(scenario()) == [(ids[0], "Acme/Old"), (ids[1], "Acme/Old"), (ids[2], "ACME/OLD")]
