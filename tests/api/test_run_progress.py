"""``GET /v1/runs/{id}/progress?since=``: a run's changes after a cursor, so a live view's refresh
costs what changed, not the size of the run (on SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .conftest import Api, create_run
from .test_artifact_records import RECORD
from .test_runs import FULL_ARTIFACT

TASKS = 40


def big_plan() -> dict[str, Any]:
    tasks = [{"key": f"test/p{i}", "project_name": f"p{i}", "project_path": f"p{i}",
              "steps": [{"name": "unit", "action": "earthly", "target": "+test"}]} for i in range(TASKS)]
    return {"phases": [{"name": "test", "group_number": 1, "tasks": tasks}], "artifacts": [FULL_ARTIFACT]}


def planned(api: Api) -> tuple[str, dict[str, Any]]:
    run = create_run(api)
    response = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=big_plan())
    assert response.status_code == 201, response.text
    return str(run["id"]), response.json()


def changes(api: Api, run_id: str, since: int) -> dict[str, Any]:
    response = api.get(f"/v1/runs/{run_id}/progress", "viewer", params={"since": since})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_since_zero_is_everything_and_the_cursor_then_names_nothing(api: Api) -> None:
    run_id, recorded = planned(api)
    everything = changes(api, run_id, 0)
    tasks = recorded["phases"][0]["tasks"]
    assert everything["tasks"].keys() == {t["id"] for t in tasks}
    assert everything["steps"].keys() == {t["steps"][0]["id"] for t in tasks}
    assert everything["run"]["status"] == "pending" and everything["cursor"] >= 1
    nothing = changes(api, run_id, everything["cursor"])
    assert (nothing["phases"], nothing["tasks"], nothing["steps"], nothing["artifact_records"]) == ({}, {}, {}, [])
    assert nothing["cursor"] == everything["cursor"]


def test_after_a_change_only_the_changed_parts_come(api: Api) -> None:
    run_id, recorded = planned(api)
    cursor = changes(api, run_id, 0)["cursor"]
    task = recorded["phases"][0]["tasks"][7]
    step = task["steps"][0]
    assert api.put(f"/v1/runs/{run_id}/status", "worker", json={"status": "running"}).status_code == 200
    assert api.put(f"/v1/tasks/{task['id']}/status", "worker", json={"status": "running"}).status_code == 204
    assert api.put(f"/v1/steps/{step['id']}/status", "worker",
                   json={"status": "failed", "exit_code": 3}).status_code == 204
    after = changes(api, run_id, cursor)
    assert list(after["tasks"]) == [task["id"]] and after["tasks"][task["id"]]["status"] == "running"
    assert list(after["steps"]) == [step["id"]] and after["steps"][step["id"]]["exit_code"] == 3
    assert after["phases"] == {} and after["run"]["status"] == "running"
    assert after["cursor"] > cursor

    put = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=RECORD)
    assert put.status_code == 200, put.text
    recorded_artifact = changes(api, run_id, after["cursor"])
    assert [(r["project"], r["artifact"]) for r in recorded_artifact["artifact_records"]] == [("api", "api")]
    assert recorded_artifact["tasks"] == {}


def test_a_cancelled_run_sends_every_part_it_cancelled(api: Api) -> None:
    run_id, recorded = planned(api)
    cursor = changes(api, run_id, 0)["cursor"]
    first = recorded["phases"][0]["tasks"][0]
    assert api.put(f"/v1/tasks/{first['id']}/status", "worker", json={"status": "success"}).status_code == 204
    assert api.delete(f"/v1/runs/{run_id}", "developer").status_code == 204
    after = changes(api, run_id, cursor)
    assert after["run"]["status"] == "cancelled"
    assert after["tasks"][first["id"]]["status"] == "success"
    cancelled = {k for k, v in after["tasks"].items() if v["status"] == "cancelled"}
    assert len(cancelled) == TASKS - 1 and len(after["steps"]) == TASKS


def test_parallel_changes_are_each_seen_once_the_cursor_passes_them(api: Api) -> None:
    """Changes made in parallel with the reading: following the cursor misses none."""
    run_id, recorded = planned(api)
    tasks = [t["id"] for t in recorded["phases"][0]["tasks"]]
    cursor = changes(api, run_id, 0)["cursor"]
    seen: dict[str, str] = {}

    def start(task_id: str) -> int:
        code: int = api.put(f"/v1/tasks/{task_id}/status", "worker", json={"status": "running"}).status_code
        return code

    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(start, task_id) for task_id in tasks]
        while not all(f.done() for f in pending):
            got = changes(api, run_id, cursor)
            seen.update({k: v["status"] for k, v in got["tasks"].items()})
            cursor = got["cursor"]
        assert all(f.result() == 204 for f in pending)
    got = changes(api, run_id, cursor)
    seen.update({k: v["status"] for k, v in got["tasks"].items()})
    assert seen == dict.fromkeys(tasks, "running")


def test_a_bad_cursor_is_refused_naming_it_and_an_unknown_run_is_not_found(api: Api) -> None:
    run_id, _ = planned(api)
    bad = api.get(f"/v1/runs/{run_id}/progress", "viewer", params={"since": -1})
    assert bad.status_code == 400 and "since" in bad.text
    missing = api.get("/v1/runs/00000000-0000-4000-8000-000000000000/progress", "viewer")
    assert missing.status_code == 404
