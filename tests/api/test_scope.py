"""Repository scope on every endpoint, generated from the OpenAPI schema.

Every operation of ``app.openapi()`` is called with a token of every role scoped to another
repository: each one that touches repository A's entities must answer 403 or 404, change nothing
and show nothing of A. The same tokens scoped to A (its name written in another case, as GitHub
compares names) must not be refused by the scope check. An operation this test cannot fill in or
classify fails it, so a new endpoint cannot slip past unexamined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from forge_core.api.app import create_app
from forge_core.api.deps import Reader
from forge_core.api.scope import SCOPE_KEY
from forge_core.plugin.host import load_plugins
from forge_core.settings.auth import DEFAULT_ROLES

from .conftest import Api, create_release, create_run, new_sha, unique_repo
from .test_runs import FULL_ARTIFACT
from .test_runs import PLAN as RUN_PLAN

ARTIFACT = {**FULL_ARTIFACT, "project": {"name": "svc", "path": "svc"}}
PLAN = {**RUN_PLAN, "artifacts": [ARTIFACT]}
RECORD = {"type": "container", "status": "success", "digest": "sha256:" + "a" * 64,
          "targets": [{"publisher": "registry", "type": "docker", "outcome": "published",
                       "uri": "127.0.0.1:5000/api:sha-x", "digest": "sha256:" + "a" * 64}]}

ROLES = sorted(DEFAULT_ROLES)
METHODS = {"get", "put", "post", "delete", "patch"}
ENVIRONMENT = "production"


@dataclass
class World:
    """Repository A with one of everything: a planned run, a release with an alias, an
    approval and a deployment."""

    repository: str
    run: dict[str, Any]
    phase: str
    task: str
    step: str
    release: dict[str, Any]
    approval: str
    deployment: str

    def path_value(self, name: str) -> str | None:
        owner, repo = self.repository.split("/")
        return {
            "run_id": self.run["id"], "phase_id": self.phase, "task_id": self.task,
            "step_id": self.step, "release_id": self.release["id"], "approval_id": self.approval,
            "deployment_id": self.deployment, "owner": owner, "repo": repo, "project": "svc", "artifact": "api",
            "ref": "1", "alias": "stable",
            "environment": ENVIRONMENT,
        }.get(name)

    def body(self, schema: dict[str, Any]) -> Any:
        """A valid body for the operation's request schema, naming A's entities."""
        name = schema.get("$ref", "").rsplit("/", 1)[-1] or schema.get("type")
        status = {"status": "running"}
        bodies: dict[str, Any] = {
            "RunCreate": {"repository": self.repository, "commit_sha": new_sha(),
                          "triggered_by": "ci", "branch": "main", "trigger_type": "push"},
            "RunPlan": PLAN,
            "RunStatusUpdate": status, "PhaseStatusUpdate": status,
            "LeaseRenewal": {"driver": "elsewhere/1/forge-run", "ttl_seconds": 60},
            "RerunCreate": {"only_failed": False},
            "TaskStatusUpdate": status, "StepStatusUpdate": status,
            "ArtifactRecordUpdate": {**RECORD, "status": "failed", "error": "overwritten"},
            "ReleaseCreate": {"repository": self.repository, "project": "svc",
                              "commit_sha": new_sha()},
            "AliasSet": {"release": "1"},
            "ReleaseImageSet": {"oci_uri": "127.0.0.1:5000/r/svc:" + self.release["commit_sha"],
                                "oci_digest": "sha256:" + "0" * 64},
            "DeploymentCreate": {"release_id": self.release["id"], "environment": "dev"},
            "DeploymentStatusUpdate": {"status": "failed", "reason": "the push gave up"},
            "ApprovalCreate": {"release_id": self.release["id"], "environment": "dev",
                               "justification": "CAB-7"},
            "PromotionCreate": {"environment": "dev", "dry_run": True, "releases": [
                {"repository": self.repository, "project": "svc", "release": "1"}]},
            "RollbackCreate": {"environment": "dev", "repository": self.repository, "project": "svc",
                               "dry_run": True},
            "ExchangeRequest": {"token": "not-a-github-token"},
            "object": {},  # the webhook's payload (refused unsigned, whoever calls)
        }
        if name not in bodies:
            pytest.fail(f"no body for request schema {schema}: add it to World.body")
        return bodies[name]

    def secrets(self) -> list[str]:
        """What of A an answer to another repository's token must never contain."""
        return [self.run["commit_sha"], self.release["commit_sha"]]

    def snapshot(self, api: Api) -> Any:
        run = api.get(f"/v1/runs/{self.run['id']}").json()
        release = api.get(f"/v1/releases/{self.repository}/svc/1").json()
        approvals = api.get("/v1/approvals", params={"release_id": self.release["id"]}).json()
        deployment = api.get(f"/v1/deployments/{ENVIRONMENT}/{self.repository}/svc").json()
        runs = api.get("/v1/runs", params={"repository": self.repository}).json()
        return run, release, approvals, deployment, runs["total"]


@pytest.fixture
def world(api: Api) -> World:
    repository = unique_repo()
    run = create_run(api, repository)
    recorded = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=PLAN).json()
    phase = recorded["phases"][0]
    task = phase["tasks"][0]
    record = api.put(f"/v1/runs/{run['id']}/artifacts/svc/api", "worker", json=RECORD)
    assert record.status_code == 200, record.text
    release = create_release(api, repository, pipeline_run_id=run["id"])
    alias = api.put(f"/v1/releases/{repository}/svc/aliases/stable", json={"release": "1"})
    assert alias.status_code == 200, alias.text
    approval = api.post("/v1/approvals", json={"release_id": release["id"], "environment": ENVIRONMENT,
                                               "justification": "CAB-1"},
                        headers=api.headers("admin", subject="carol"))  # not the run's author (alice)
    assert approval.status_code == 201, approval.text
    deployed = api.post("/v1/deployments", json={"release_id": release["id"], "environment": ENVIRONMENT})
    assert deployed.status_code == 201, deployed.text
    return World(repository, run, phase["id"], task["id"], task["steps"][0]["id"], release,
                 approval.json()["id"], deployed.json()["id"])


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def scope(self) -> str:
        value: str = self.spec.get(SCOPE_KEY, "repository")
        return value

    def request(self, world: World, **query: str) -> dict[str, Any]:
        """The method, URL, query and body of a call naming A's entities."""

        def fill(match: re.Match[str]) -> str:
            value = world.path_value(match.group(1))
            if value is None:
                pytest.fail(f"{self}: no value for path parameter {match.group(1)!r}")
            return value

        names = {p["name"] for p in self.spec.get("parameters", []) if p["in"] == "query"}
        params = {"repository": world.repository, "release_id": world.release["id"], **query}
        request: dict[str, Any] = {
            "method": self.method.upper(),
            "url": re.sub(r"\{(\w+)(?::path)?\}", fill, self.path),
            "params": {k: v for k, v in params.items() if k in names and v},
        }
        schema = self.spec.get("requestBody", {}).get("content", {}).get("application/json")
        if schema is not None:
            request["json"] = world.body(schema["schema"])
        return request

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(app: FastAPI) -> Iterator[Operation]:
    for path, item in app.openapi()["paths"].items():
        for method, spec in item.items():
            if method in METHODS:
                yield Operation(method, path, spec)


def call(api: Api, request: dict[str, Any], token: str) -> httpx.Response:
    return api.client.request(**request, headers={"Authorization": f"Bearer {token}"})


def refused_by_scope(response: httpx.Response, world: World) -> bool:
    if response.status_code not in (403, 404):
        return False
    message = response.json()["error"]["message"]
    if response.status_code == 403:
        return "may act on repository" in message
    ids = [world.run["id"], world.phase, world.task, world.step, world.release["id"], world.approval,
           world.deployment]
    return any(entity in message for entity in ids)  # A's existing entity said not to exist


def test_every_endpoint_refuses_a_token_scoped_to_another_repository(api: Api, world: World) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    everything = list(operations(app))
    assert len(everything) >= 25  # the schema was read, not an empty document
    unknown = [str(op) for op in everything if op.scope not in {"repository", "own", "all", "none"}]
    assert not unknown, f"operations with an unknown {SCOPE_KEY}: {unknown}"
    other = unique_repo()
    foreign = {role: api.token(role, repository=other) for role in ROLES}
    own = {role: api.token(role, repository=world.repository.swapcase()) for role in ROLES}
    before = world.snapshot(api)
    leaks: list[str] = []
    for op in everything:
        for role in ROLES:
            request = op.request(world)
            answer = call(api, request, foreign[role])
            if op.scope == "none":  # repository-free: the scope makes no difference
                same = call(api, op.request(world), own[role]).status_code
                if answer.status_code != same and not {answer.status_code, same} <= {200, 201}:
                    leaks.append(f"{op} as {role}: {answer.status_code} scoped elsewhere, {same} here")
                continue
            if op.scope == "own":  # lists the token's repository only, and refuses naming another
                unnamed = call(api, op.request(world, repository=""), foreign[role])
                if unnamed.status_code == 200 and world.run["id"] in unnamed.text:
                    leaks.append(f"{op} as {role} lists {world.repository}'s runs")
            if answer.status_code not in (403, 404):
                leaks.append(f"{op} as {role}: {answer.status_code} {answer.text[:200]}")
            elif any(secret in answer.text for secret in world.secrets()):
                leaks.append(f"{op} as {role}: the refusal shows {world.repository}'s data")
    assert not leaks, "\n".join(leaks)
    assert world.snapshot(api) == before  # nothing of A was changed

    # The control: the same roles scoped to A are never refused by the scope check.
    refused = [
        f"{op} as {role}: {answer.status_code} {answer.text[:200]}"
        for op in everything
        if op.scope not in {"none", "all"}
        for role in ROLES
        if refused_by_scope(answer := call(api, op.request(world), own[role]), world)
    ]
    assert not refused, "\n".join(refused)
    closed = [f"{op} as {role}" for op in everything if op.scope == "all" for role in ROLES
              if call(api, op.request(world), own[role]).status_code != 403]
    assert not closed, f"every repository's data shown to a scoped token: {closed}"


def test_worker_status_updates_of_another_repository_change_nothing(api: Api, world: World) -> None:
    """The status endpoints, which checked no repository before: a worker token scoped to
    another repository can neither change nor probe A's run, phase, task or step."""
    token = {"Authorization": f"Bearer {api.token('worker', repository=unique_repo())}"}
    for kind, entity in (("steps", world.step), ("tasks", world.task), ("phases", world.phase),
                         ("runs", world.run["id"])):
        answer = api.client.put(f"/v1/{kind}/{entity}/status", json={"status": "failed"}, headers=token)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "resource_not_found"
    again = api.client.post(f"/v1/runs/{world.run['id']}/plan", json=PLAN, headers=token)
    assert again.status_code == 404, again.text
    run = api.get(f"/v1/runs/{world.run['id']}").json()
    assert run["status"] == "pending"
    assert {t["status"] for p in run["phases"] for t in p["tasks"]} == {"pending"}
    assert {s["status"] for p in run["phases"] for t in p["tasks"] for s in t["steps"]} == {"pending"}


def test_another_repositorys_entity_is_answered_like_a_missing_one(api: Api, world: World) -> None:
    token = {"Authorization": f"Bearer {api.token('admin', repository=unique_repo())}"}
    missing = "00000000-0000-4000-8000-000000000000"
    for path in ("/v1/runs/{}", "/v1/approvals/{}/production"):
        foreign = api.client.get(path.format(world.run["id"] if "runs" in path else world.release["id"]),
                                 headers=token)
        absent = api.client.get(path.format(missing), headers=token)
        assert (foreign.status_code, absent.status_code) == (404, 404)
        scrub = [world.run["id"], world.release["id"], missing]
        assert _without(foreign.json(), scrub) == _without(absent.json(), scrub)


def _without(document: Any, ids: list[str]) -> str:
    text = str(document)
    for entity in ids:
        text = text.replace(entity, "<id>")
    return text


def test_repository_names_compare_without_regard_to_case(api: Api, world: World) -> None:
    shouted = {"Authorization": f"Bearer {api.token('viewer', repository=world.repository.upper())}"}
    assert api.client.get(f"/v1/runs/{world.run['id']}", headers=shouted).status_code == 200
    owner, repo = world.repository.split("/")
    named = api.client.get(f"/v1/releases/{owner.title()}/{repo.upper()}/svc", headers=shouted)
    assert named.status_code != 403, named.text
    elsewhere = api.client.get(f"/v1/releases/{owner}/{repo}x/svc", headers=shouted)
    assert elsewhere.status_code == 403
    assert f"{world.repository.upper()} only" in elsewhere.json()["error"]["message"]


def test_an_endpoint_that_names_no_repository_is_closed_to_scoped_tokens(api: Api) -> None:
    """Fail closed: an operation added without a repository parameter and without declaring
    itself repository-free is refused to a scoped token, and open to others."""
    router = APIRouter()

    @router.get("/v1/unclassified")
    async def unclassified(_: Reader) -> dict[str, str]:
        return {"answer": "everything"}

    app = create_app(api.settings, load_plugins(api.settings.plugins))
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        scoped = client.get("/v1/unclassified", headers={
            "Authorization": f"Bearer {api.token('admin', repository=unique_repo())}"})
        assert scoped.status_code == 403
        assert "names no repository" in scoped.json()["error"]["message"]
        assert client.get("/v1/unclassified", headers=api.as_admin()).json() == {"answer": "everything"}


def test_a_scoped_tokens_invalid_body_is_invalid_not_refused(api: Api) -> None:
    token = {"Authorization": f"Bearer {api.token('developer', repository='acme/app')}"}
    answer = api.client.post("/v1/runs", json={"repository": "acme/app"}, headers=token)
    assert answer.status_code == 400
    assert "body.commit_sha" in answer.json()["error"]["message"]


def test_a_release_cannot_claim_another_repositorys_run(api: Api, world: World) -> None:
    mine = unique_repo()
    token = {"Authorization": f"Bearer {api.token('releaser', repository=mine)}"}
    body = {"repository": mine, "project": "svc", "commit_sha": new_sha(),
            "pipeline_run_id": world.run["id"]}
    answer = api.client.post("/v1/releases", json=body, headers=token)
    assert answer.status_code == 404, answer.text
    assert world.repository not in answer.text
    assert api.get(f"/v1/releases/{mine}/svc").json()["total"] == 0


def test_a_scoped_tokens_missing_body_is_invalid_not_refused(api: Api) -> None:
    token = {"Authorization": f"Bearer {api.token('developer', repository='acme/app')}"}
    answer = api.client.post("/v1/runs", headers=token)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
