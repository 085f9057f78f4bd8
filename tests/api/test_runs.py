"""Pipeline runs: create, read, list, cancel, and the internal status updates of workers."""

from __future__ import annotations

from typing import Any

from .conftest import Api, create_run, new_sha, unique_repo

PLAN = {
    "phases": [
        {"name": "test", "group_number": 1, "tasks": [
            {"key": "test/api", "project_name": "api", "project_path": "services/api",
             "steps": [{"name": "lint", "action": "earthly", "target": "+lint"},
                       {"name": "unit", "action": "earthly", "target": "+test", "timeout_seconds": 600}]},
            {"key": "test/web", "project_name": "web", "project_path": "web", "steps": []},
        ]},
        {"name": "build", "group_number": 2, "tasks": [
            {"key": "build/api", "project_name": "api", "project_path": "services/api",
             "steps": [{"name": "image", "action": "earthly", "target": "+docker"}]},
        ]},
    ]
}


def plan(api: Api, run_id: str) -> dict[str, Any]:
    response = api.client.post(f"/v1/runs/{run_id}/plan", json=PLAN, headers=api.headers("worker"))
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    return recorded


def test_a_new_run_is_pending_and_readable(api: Api) -> None:
    run = create_run(api, branch="main")
    assert run["status"] == "pending"
    fetched = api.client.get(f"/v1/runs/{run['id']}", headers=api.headers("viewer")).json()
    assert fetched["repository"] == run["repository"]
    assert fetched["commit_sha"] == run["commit_sha"]
    assert fetched["phases"] == []


def test_commit_sha_is_stored_lower_case(api: Api) -> None:
    sha = new_sha().upper()
    assert create_run(api, sha=sha)["commit_sha"] == sha.lower()


def test_a_second_run_for_a_commit_is_a_conflict_naming_the_first(api: Api) -> None:
    run = create_run(api)
    again = api.client.post(
        "/v1/runs",
        json={"repository": run["repository"], "commit_sha": run["commit_sha"], "triggered_by": "bob"},
        headers=api.as_admin(),
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "resource_conflict"
    assert again.json()["error"]["details"]["run_id"] == run["id"]


def test_a_non_hex_commit_sha_is_invalid(api: Api) -> None:
    response = api.client.post(
        "/v1/runs", json={"repository": unique_repo(), "commit_sha": "not-a-sha!", "triggered_by": "a"},
        headers=api.as_admin(),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["errors"][0]["field"] == "body.commit_sha"


def test_unknown_fields_are_refused(api: Api) -> None:
    response = api.client.post(
        "/v1/runs",
        json={"repository": unique_repo(), "commit_sha": new_sha(), "triggered_by": "a", "priority": "high"},
        headers=api.as_admin(),
    )
    assert response.status_code == 400
    assert "body.priority" in [e["field"] for e in response.json()["error"]["details"]["errors"]]


def test_malformed_json_is_invalid_request(api: Api) -> None:
    response = api.client.post(
        "/v1/runs", content=b"{not json", headers={**api.as_admin(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_unknown_run_is_not_found(api: Api) -> None:
    response = api.client.get("/v1/runs/00000000-0000-4000-8000-000000000000", headers=api.as_admin())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"


def test_listing_filters_and_paginates(api: Api) -> None:
    repository = unique_repo()
    for branch in ("main", "main", "main", "dev"):
        create_run(api, repository=repository, branch=branch)
    page = api.client.get(
        "/v1/runs", params={"repository": repository, "branch": "main", "limit": 2}, headers=api.headers("viewer")
    ).json()
    assert (page["total"], page["limit"], page["offset"], len(page["runs"])) == (3, 2, 0, 2)
    rest = api.client.get(
        "/v1/runs", params={"repository": repository, "branch": "main", "limit": 2, "offset": 2},
        headers=api.headers("viewer"),
    ).json()
    assert len(rest["runs"]) == 1
    assert {r["id"] for r in page["runs"]}.isdisjoint({r["id"] for r in rest["runs"]})
    by_status = api.client.get(
        "/v1/runs", params={"repository": repository, "status": "success"}, headers=api.headers("viewer")
    ).json()
    assert by_status["total"] == 0


def test_limit_over_the_maximum_is_invalid(api: Api) -> None:
    response = api.client.get("/v1/runs", params={"limit": 100000}, headers=api.as_admin())
    assert response.status_code == 400


def test_plan_returns_ids_and_the_run_shows_phases_tasks_steps(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    assert [p["name"] for p in recorded["phases"]] == ["test", "build"]
    task = recorded["phases"][0]["tasks"][0]
    assert task["key"] == "test/api"
    assert task["id"]
    assert [s["name"] for s in task["steps"]] == ["lint", "unit"]
    assert task["steps"][1]["timeout_seconds"] == 600
    fetched = api.client.get(f"/v1/runs/{run['id']}", headers=api.as_admin()).json()
    assert fetched["phases"] == recorded["phases"]


def test_a_second_plan_is_a_conflict(api: Api) -> None:
    run = create_run(api)
    plan(api, run["id"])
    again = api.client.post(f"/v1/runs/{run['id']}/plan", json=PLAN, headers=api.headers("worker"))
    assert again.status_code == 409


def test_a_plan_with_a_duplicate_step_name_is_invalid_and_stores_nothing(api: Api) -> None:
    run = create_run(api)
    bad = {"phases": [{"name": "p", "group_number": 1, "tasks": [
        {"key": "k", "project_name": "a", "project_path": "a",
         "steps": [{"name": "s", "action": "x"}, {"name": "s", "action": "y"}]}]}]}
    response = api.client.post(f"/v1/runs/{run['id']}/plan", json=bad, headers=api.headers("worker"))
    assert response.status_code == 400
    assert api.client.get(f"/v1/runs/{run['id']}", headers=api.as_admin()).json()["phases"] == []


def test_status_updates_set_timestamps_and_results(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    worker = api.headers("worker")
    phase = recorded["phases"][0]
    task = phase["tasks"][0]
    step = task["steps"][0]
    assert api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "running"}, headers=worker).status_code == 200
    assert api.client.put(f"/v1/phases/{phase['id']}/status", json={"status": "running"}, headers=worker).status_code == 204
    assert api.client.put(f"/v1/tasks/{task['id']}/status", json={"status": "running"}, headers=worker).status_code == 204
    response = api.client.put(
        f"/v1/steps/{step['id']}/status",
        json={"status": "failed", "exit_code": 2, "logs_s3_key": "pipeline-runs/x/logs/test/api/lint.log"},
        headers=worker,
    )
    assert response.status_code == 204
    api.client.put(f"/v1/tasks/{task['id']}/status", json={"status": "failed", "error": "lint failed"}, headers=worker)
    done = api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "failed", "error": "test failed"}, headers=worker)
    assert done.json()["status"] == "failed"
    assert done.json()["completed_at"]
    fetched = api.client.get(f"/v1/runs/{run['id']}", headers=api.as_admin()).json()
    got_task = fetched["phases"][0]["tasks"][0]
    assert got_task["status"] == "failed"
    assert got_task["error"] == "lint failed"
    assert got_task["started_at"]
    got_step = got_task["steps"][0]
    assert (got_step["status"], got_step["exit_code"]) == ("failed", 2)
    assert got_step["logs_s3_key"].endswith("lint.log")
    assert got_step["completed_at"]
    assert fetched["started_at"]
    assert fetched["error"] == "test failed"


def test_a_finished_run_cannot_change_status(api: Api) -> None:
    run = create_run(api)
    worker = api.headers("worker")
    api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "success"}, headers=worker)
    again = api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "running"}, headers=worker)
    assert again.status_code == 409
    same = api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "success"}, headers=worker)
    assert same.status_code == 200  # a retried update is harmless


def test_an_unknown_status_word_is_invalid(api: Api) -> None:
    run = create_run(api)
    response = api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "succeeded"}, headers=api.headers("worker"))
    assert response.status_code == 400


def test_cancel_cancels_open_work_and_blocks_later_updates(api: Api) -> None:
    run = create_run(api)
    recorded = plan(api, run["id"])
    step_id = recorded["phases"][0]["tasks"][0]["steps"][0]["id"]
    assert api.client.delete(f"/v1/runs/{run['id']}", headers=api.headers("developer")).status_code == 204
    fetched = api.client.get(f"/v1/runs/{run['id']}", headers=api.as_admin()).json()
    assert fetched["status"] == "cancelled"
    assert fetched["completed_at"]
    assert {p["status"] for p in fetched["phases"]} == {"cancelled"}
    assert {s["status"] for p in fetched["phases"] for t in p["tasks"] for s in t["steps"]} == {"cancelled"}
    late = api.client.put(f"/v1/steps/{step_id}/status", json={"status": "running"}, headers=api.headers("worker"))
    assert late.status_code == 409
    assert api.client.delete(f"/v1/runs/{run['id']}", headers=api.as_admin()).status_code == 204  # already cancelled: no-op


def test_cancelling_a_finished_run_is_a_conflict(api: Api) -> None:
    run = create_run(api)
    api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "success"}, headers=api.headers("worker"))
    assert api.client.delete(f"/v1/runs/{run['id']}", headers=api.as_admin()).status_code == 409


def test_status_of_an_unknown_task_is_not_found(api: Api) -> None:
    response = api.client.put(
        "/v1/tasks/00000000-0000-4000-8000-000000000000/status", json={"status": "running"}, headers=api.headers("worker")
    )
    assert response.status_code == 404
