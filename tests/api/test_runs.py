"""Pipeline runs: create, read, list, cancel, and the internal status updates of workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from forge_core.adapters.db.models import AuditEntry

from .conftest import Api, create_run, new_sha, unique_repo

UNKNOWN = "00000000-0000-4000-8000-000000000000"
API_STEPS = [
    {"name": "lint", "action": "earthly", "target": "+lint"},
    {"name": "unit", "action": "earthly", "target": "+test", "timeout": 600},
]
PLAN = {
    "phases": [
        {
            "name": "test",
            "group_number": 1,
            "tasks": [
                {"key": "test/api", "project_name": "api", "project_path": "services/api",
                 "steps": API_STEPS},
                {"key": "test/web", "project_name": "web", "project_path": "web", "steps": []},
            ],
        },
        {
            "name": "build",
            "group_number": 2,
            "required": False,
            "tasks": [
                {"key": "build/api", "project_name": "api", "project_path": "services/api",
                 "steps": [{"name": "image", "action": "earthly", "target": "+docker"}]},
            ],
        },
    ]
}


def plan(api: Api, run_id: str) -> dict[str, Any]:
    response = api.post(f"/v1/runs/{run_id}/plan", "worker", json=PLAN)
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    return recorded


def status(api: Api, kind: str, entity_id: str, **body: Any) -> int:
    """PUT /v1/{kind}/{id}/status as the worker; the HTTP status."""
    code: int = api.put(f"/v1/{kind}/{entity_id}/status", "worker", json=body).status_code
    return code


def test_a_new_run_is_pending_and_readable(api: Api) -> None:
    run = create_run(api, branch="main")
    assert run["status"] == "pending"
    fetched = api.get(f"/v1/runs/{run['id']}", "viewer").json()
    assert fetched["repository"] == run["repository"]
    assert fetched["commit_sha"] == run["commit_sha"]
    assert fetched["phases"] == []


def test_commit_sha_is_stored_lower_case(api: Api) -> None:
    sha = new_sha().upper()
    assert create_run(api, sha=sha)["commit_sha"] == sha.lower()


def test_a_second_run_for_a_commit_is_a_conflict_naming_the_first(api: Api) -> None:
    run = create_run(api)
    body = {"repository": run["repository"], "commit_sha": run["commit_sha"], "triggered_by": "b"}
    again = api.post("/v1/runs", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "resource_conflict"
    assert again.json()["error"]["details"]["run_id"] == run["id"]


def test_a_non_hex_commit_sha_is_invalid(api: Api) -> None:
    body = {"repository": unique_repo(), "commit_sha": "not-a-sha!", "triggered_by": "a"}
    response = api.post("/v1/runs", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["errors"][0]["field"] == "body.commit_sha"


def test_unknown_fields_are_refused(api: Api) -> None:
    body = {"repository": unique_repo(), "commit_sha": new_sha(), "triggered_by": "a", "pri": 1}
    response = api.post("/v1/runs", json=body)
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["error"]["details"]["errors"]]
    assert "body.pri" in fields


def test_unknown_query_parameters_are_refused(api: Api) -> None:
    response = api.get("/v1/runs", params={"repo": "acme/x"})
    assert response.status_code == 400
    assert "'repo'" in response.json()["error"]["message"]


def test_malformed_json_is_invalid_request(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    response = api.post("/v1/runs", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_unknown_run_is_not_found(api: Api) -> None:
    response = api.get(f"/v1/runs/{UNKNOWN}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"


def test_listing_filters_and_paginates(api: Api) -> None:
    repository = unique_repo()
    for branch in ("main", "main", "main", "dev"):
        create_run(api, repository=repository, branch=branch)
    query = {"repository": repository, "branch": "main", "limit": 2}
    page = api.get("/v1/runs", "viewer", params=query).json()
    assert (page["total"], page["limit"], page["offset"], len(page["runs"])) == (3, 2, 0, 2)
    rest = api.get("/v1/runs", "viewer", params={**query, "offset": 2}).json()
    assert len(rest["runs"]) == 1
    assert {r["id"] for r in page["runs"]}.isdisjoint({r["id"] for r in rest["runs"]})
    by_status = {"repository": repository, "status": "success"}
    assert api.get("/v1/runs", "viewer", params=by_status).json()["total"] == 0


def test_limit_over_the_maximum_is_invalid(api: Api) -> None:
    assert api.get("/v1/runs", params={"limit": 100000}).status_code == 400


def test_plan_returns_ids_and_the_run_shows_phases_tasks_steps(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    assert [p["name"] for p in recorded["phases"]] == ["test", "build"]
    task = recorded["phases"][0]["tasks"][0]
    assert task["key"] == "test/api"
    assert task["id"]
    assert [s["name"] for s in task["steps"]] == ["lint", "unit"]
    assert task["steps"][1]["timeout"] == "PT10M"
    assert [p["required"] for p in recorded["phases"]] == [True, False]  # a plan that does not say is strict
    assert api.get(f"/v1/runs/{run['id']}").json()["phases"] == recorded["phases"]


FULL_STEP = {
    "name": "image", "action": "earthly", "target": "+docker", "timeout": "PT45S",
    "settings": {"args": {"VERSION": "1.2.3", "ÜBER": "naïve ☃"}, "platforms": ["linux/amd64", "linux/arm64"],
                 "cache": {"size": 1.5, "layers": [1, {"x": None}], "on": True}, "none": {}},
    "secrets": {"NPM_TOKEN": {"provider": "env", "path": "ACME_NPM", "key": "token"},
                "GH_TOKEN": {"provider": "file", "path": "github", "key": None}},
    "retries": {"attempts": 2, "delay": "PT0.5S", "filters": ["connection reset", "^E: .*timed out$"]},
}
FULL_ARTIFACT = {
    "project": {"name": "api", "path": "services/api"},
    "spec": {"name": "api", "type": "container", "producer": "earthly",
             "producer_settings": {"target": "+docker", "args": {"FLAVOUR": "slim"}}, "publishers": ["registry"]},
    "publishers": [{"name": "registry", "type": "docker", "settings": {"registry": "127.0.0.1:5000"},
                    "credentials": {"default": {"provider": "env", "path": "REGISTRY_TOKEN", "key": None}}}],
}
FULL_PLAN = {
    "phases": [{
        "name": "build", "group_number": 2, "required": True,
        "tasks": [{"key": "api/build", "project_name": "api", "project_path": "services/api", "timeout": "PT1M30S",
                   "steps": [FULL_STEP, {"name": "lint", "action": "exec"}]}],
    }],
    "artifacts": [FULL_ARTIFACT],
}
STATE = {"id", "status", "error", "exit_code", "logs_s3_key", "started_at", "completed_at"}
STEP_DEFAULTS = {"target": "", "timeout": None, "settings": {}, "secrets": {},
                 "retries": {"attempts": 0, "delay": "PT10S", "filters": []}}


def planned_part(value: Any) -> Any:
    """The plan fields of a recorded plan: without ids, statuses and timestamps."""
    if isinstance(value, dict):
        return {k: planned_part(v) for k, v in value.items() if k not in STATE}
    if isinstance(value, list):
        return [planned_part(v) for v in value]
    return value


def test_every_field_of_the_plan_is_stored_and_returned_unchanged(api: Api) -> None:
    run = create_run(api)
    response = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=FULL_PLAN)
    assert response.status_code == 201, response.text
    recorded = response.json()
    expected = json.loads(json.dumps(FULL_PLAN))
    expected["phases"][0]["tasks"][0]["steps"][1] = {"name": "lint", "action": "exec", **STEP_DEFAULTS}
    assert planned_part(recorded) == expected
    fetched = api.get(f"/v1/runs/{run['id']}", "viewer").json()
    assert fetched["phases"] == recorded["phases"]
    assert fetched["artifacts"] == recorded["artifacts"] == expected["artifacts"]
    step = fetched["phases"][0]["tasks"][0]["steps"][0]
    assert step["id"] and step["status"] == "pending"


@pytest.mark.parametrize(("change", "where"), [
    (lambda p: p["phases"][0]["tasks"][0]["steps"][0]["settings"].update({"a": "nul\x00"}),
     "phases.0.tasks.0.steps.0.settings.a"),
    (lambda p: p["phases"][0]["tasks"][0]["steps"][0].update({"id": "s1"}), "phases.0.tasks.0.steps.0.id"),
    (lambda p: p["phases"][0]["tasks"][0].update({"timeout": "P8D"}), "phases.0.tasks.0.timeout"),
    (lambda p: p["phases"][0]["tasks"][0]["steps"][0].update({"action": "x" * 256}),
     "phases.0.tasks.0.steps.0.action"),
])
def test_a_plan_the_tables_cannot_hold_is_refused_naming_where(
    api: Api, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    run = create_run(api)
    bad = json.loads(json.dumps(FULL_PLAN))
    change(bad)
    response = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=bad)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["where"] == where
    assert api.get(f"/v1/runs/{run['id']}").json()["phases"] == []


def test_a_plan_with_an_unknown_step_field_is_refused(api: Api) -> None:
    run = create_run(api)
    bad = json.loads(json.dumps(FULL_PLAN))
    bad["phases"][0]["tasks"][0]["steps"][0]["setings"] = {}
    response = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=bad)
    assert response.status_code == 400
    assert "setings" in response.json()["error"]["message"]


def test_the_openapi_schema_shows_the_plan_model(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/v1/runs/{run_id}/plan"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunPlan")
    components = schema["components"]["schemas"]
    step = components["StepPlan"]["properties"]
    assert {"name", "action", "target", "timeout", "settings", "secrets", "retries", "id"} <= set(step)
    assert {"attempts", "delay", "filters"} <= set(components["StepRetries"]["properties"])
    assert {"timeout", "steps"} <= set(components["TaskPlan"]["properties"])
    assert "required" in components["PhasePlan"]["properties"]
    assert {"project", "spec", "publishers"} <= set(components["ArtifactPlan"]["properties"])
    assert "artifacts" in components["Run"]["properties"]


def test_a_second_plan_is_a_conflict(api: Api) -> None:
    run = create_run(api)
    plan(api, run["id"])
    assert api.post(f"/v1/runs/{run['id']}/plan", "worker", json=PLAN).status_code == 409


def test_a_plan_with_a_duplicate_step_name_is_invalid_and_stores_nothing(api: Api) -> None:
    run = create_run(api)
    steps = [{"name": "s", "action": "x"}, {"name": "s", "action": "y"}]
    task = {"key": "k", "project_name": "a", "project_path": "a", "steps": steps}
    bad = {"phases": [{"name": "p", "group_number": 1, "tasks": [task]}]}
    assert api.post(f"/v1/runs/{run['id']}/plan", "worker", json=bad).status_code == 400
    assert api.get(f"/v1/runs/{run['id']}").json()["phases"] == []


def test_status_updates_set_timestamps_and_results(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    phase = recorded["phases"][0]
    task = phase["tasks"][0]
    step = task["steps"][0]
    assert status(api, "runs", run["id"], status="running") == 200
    assert status(api, "phases", phase["id"], status="running") == 204
    assert status(api, "tasks", task["id"], status="running") == 204
    logs = "pipeline-runs/x/logs/test/api/lint.log"
    assert status(api, "steps", step["id"], status="failed", exit_code=2, logs_s3_key=logs) == 204
    assert status(api, "tasks", task["id"], status="failed", error="lint failed") == 204
    done = api.put(f"/v1/runs/{run['id']}/status", "worker", json={"status": "failed"}).json()
    assert done["status"] == "failed"
    assert done["completed_at"]
    fetched = api.get(f"/v1/runs/{run['id']}").json()
    got_task = fetched["phases"][0]["tasks"][0]
    assert (got_task["status"], got_task["error"]) == ("failed", "lint failed")
    assert got_task["started_at"]
    got_step = got_task["steps"][0]
    assert (got_step["status"], got_step["exit_code"]) == ("failed", 2)
    assert got_step["logs_s3_key"] == logs
    assert got_step["completed_at"]
    assert fetched["started_at"]


def test_a_finished_run_cannot_change_status(api: Api) -> None:
    run = create_run(api)
    assert status(api, "runs", run["id"], status="success") == 200
    assert status(api, "runs", run["id"], status="running") == 409
    assert status(api, "runs", run["id"], status="success") == 200  # a retried update is harmless


def test_an_unknown_status_word_is_invalid(api: Api) -> None:
    run = create_run(api)
    assert status(api, "runs", run["id"], status="succeeded") == 400


def test_cancel_cancels_open_work_and_blocks_later_updates(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    step_id = recorded["phases"][0]["tasks"][0]["steps"][0]["id"]
    assert api.delete(f"/v1/runs/{run['id']}", "developer").status_code == 204
    fetched = api.get(f"/v1/runs/{run['id']}").json()
    assert fetched["status"] == "cancelled"
    assert fetched["completed_at"]
    assert {p["status"] for p in fetched["phases"]} == {"cancelled"}
    steps = [s for p in fetched["phases"] for t in p["tasks"] for s in t["steps"]]
    assert {s["status"] for s in steps} == {"cancelled"}
    assert status(api, "steps", step_id, status="running") == 409
    assert api.delete(f"/v1/runs/{run['id']}").status_code == 204  # already cancelled: no-op


def test_cancelling_a_finished_run_is_a_conflict(api: Api) -> None:
    run = create_run(api)
    status(api, "runs", run["id"], status="success")
    assert api.delete(f"/v1/runs/{run['id']}").status_code == 409


def test_status_of_an_unknown_task_is_not_found(api: Api) -> None:
    assert status(api, "tasks", UNKNOWN, status="running") == 404


def test_changes_are_written_to_the_audit_log_with_their_actor(api: Api) -> None:
    run = create_run(api)
    api.put(f"/v1/runs/{run['id']}/status", "worker", json={"status": "running"})

    async def entries() -> list[tuple[str, str, Any]]:
        engine = create_async_engine(api.settings.database.resolved_url())
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
                .where(AuditEntry.entity_id == run["id"])
                .order_by(AuditEntry.id)
            )
            found = [tuple(row) for row in rows]
        await engine.dispose()
        return found  # type: ignore[return-value]

    assert asyncio.run(entries()) == [
        ("run.created", "alice", {"commit_sha": run["commit_sha"]}),
        ("run.status", "alice", {"from": "pending", "to": "running"}),
    ]
