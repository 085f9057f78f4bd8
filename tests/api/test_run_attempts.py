"""Re-runs: a finished run becomes its next attempt; earlier attempts keep their history."""

from __future__ import annotations

from typing import Any

from .conftest import Api, create_run
from .test_runs import plan, status


def tasks_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for p in run["phases"] for t in p["tasks"]}


def finish_first_attempt(api: Api) -> tuple[str, dict[str, Any]]:
    """A run whose test/api task failed (its unit step exit 2) and test/web succeeded."""
    run_id = create_run(api)["id"]
    recorded = plan(api, run_id)
    assert status(api, "runs", run_id, status="running") == 200
    tasks = tasks_of(recorded)
    for step in tasks["test/api"]["steps"]:
        assert status(api, "steps", step["id"], status="running") == 204
        ended = "failed" if step["name"] == "unit" else "success"
        assert status(api, "steps", step["id"], status=ended, exit_code=2 if ended == "failed" else 0,
                      logs_s3_key=f"logs/{run_id}/{step['id']}.log") == 204
    assert status(api, "tasks", tasks["test/api"]["id"], status="failed", error="unit failed") == 204
    assert status(api, "tasks", tasks["test/web"]["id"], status="running") == 204
    assert status(api, "tasks", tasks["test/web"]["id"], status="success") == 204
    assert status(api, "runs", run_id, status="failed", error="task test/api failed") == 200
    return run_id, recorded


def test_a_failed_run_is_re_run_as_its_next_attempt_keeping_the_first(api: Api) -> None:
    run_id, first = finish_first_attempt(api)
    rerun = api.post(f"/v1/runs/{run_id}/rerun", "developer", json={})
    assert rerun.status_code == 201, rerun.text
    again = rerun.json()
    assert (again["id"], again["attempt"], again["status"], again["error"]) == (run_id, 2, "pending", None)
    assert again["phases"] == []  # the driver records the plan of the new attempt
    [earlier] = again["attempts"]
    assert (earlier["number"], earlier["status"], earlier["error"]) == (1, "failed", "task test/api failed")

    second = plan(api, run_id)
    tasks = tasks_of(second)
    # only failed tasks run again: test/web is carried over as it ended, test/api and build/api are to run
    assert tasks["test/web"]["status"] == "success"
    assert tasks["test/api"]["status"] == "pending" and tasks["build/api"]["status"] == "pending"
    assert tasks["test/api"]["id"] != tasks_of(first)["test/api"]["id"]

    shown = api.get(f"/v1/runs/{run_id}")
    assert shown.json()["attempt"] == 2 and tasks_of(shown.json())["test/api"]["status"] == "pending"
    old = api.get(f"/v1/runs/{run_id}", params={"attempt": 1}).json()
    assert (old["attempt"], old["status"], old["error"]) == (1, "failed", "task test/api failed")
    steps = {st["name"]: st for st in tasks_of(old)["test/api"]["steps"]}
    assert (steps["unit"]["status"], steps["unit"]["exit_code"]) == ("failed", 2)
    assert steps["unit"]["logs_s3_key"] == f"logs/{run_id}/{steps['unit']['id']}.log"
    assert api.get(f"/v1/runs/{run_id}", params={"attempt": 3}).status_code == 404


def test_re_running_everything_carries_nothing_over(api: Api) -> None:
    run_id, _ = finish_first_attempt(api)
    assert api.post(f"/v1/runs/{run_id}/rerun", "developer", json={"only_failed": False}).status_code == 201
    assert {t["status"] for t in tasks_of(plan(api, run_id)).values()} == {"pending"}


def test_one_attempt_at_a_time_per_commit(api: Api) -> None:
    run_id = create_run(api)["id"]
    refused = api.post(f"/v1/runs/{run_id}/rerun", "developer", json={})
    assert refused.status_code == 409
    assert "is pending (attempt 1): one attempt at a time per commit" in refused.json()["error"]["message"]
    assert status(api, "runs", run_id, status="cancelled") == 200
    assert api.post(f"/v1/runs/{run_id}/rerun", "developer", json={}).status_code == 201
    again = api.post(f"/v1/runs/{run_id}/rerun", "developer", json={})
    assert again.status_code == 409 and "attempt 2" in again.json()["error"]["message"]
    assert plan(api, run_id)["phases"]  # the new attempt takes a plan although the first had one


def test_a_re_run_needs_the_run_permission(api: Api) -> None:
    run_id, _ = finish_first_attempt(api)
    assert api.post(f"/v1/runs/{run_id}/rerun", "viewer", json={}).status_code == 403
    assert api.post(f"/v1/runs/{run_id}/rerun", "developer", json={"only_failed": "perhaps"}).status_code == 400
