"""Run leases: a run's driver holds its lease; a run whose lease lapses is closed failed ("its
driver stopped") — on read, and by the API's periodic sweep without anyone reading it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import platform_key
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings.leases import LeaseSettings

from .conftest import Api, create_run
from .test_runs import plan, status


def lease(api: Api, run_id: str, driver: str, ttl: float) -> Any:
    return api.put(f"/v1/runs/{run_id}/lease", "worker", json={"driver": driver, "ttl_seconds": ttl})


def test_a_driver_holds_a_run_and_another_is_refused_while_it_does(api: Api) -> None:
    run_id = create_run(api)["id"]
    held = lease(api, run_id, "box/1/forge-run", 60)
    assert held.status_code == 200, held.text
    assert held.json()["driver"] == "box/1/forge-run" and held.json()["lease_expires_at"]
    assert lease(api, run_id, "box/1/forge-run", 60).status_code == 200  # its own renewal
    taken = lease(api, run_id, "other/2/forge-server", 60)
    assert taken.status_code == 409
    assert "is driven by box/1/forge-run" in taken.json()["error"]["message"]
    assert api.get(f"/v1/runs/{run_id}").json()["status"] == "pending"


def test_a_run_whose_lease_lapses_is_closed_failed_when_read(api: Api) -> None:
    run_id = create_run(api)["id"]
    recorded = plan(api, run_id)
    assert status(api, "runs", run_id, status="running") == 200
    step = recorded["phases"][0]["tasks"][0]["steps"][0]["id"]
    assert status(api, "steps", step, status="running") == 204
    assert lease(api, run_id, "box/1/forge-run", 0.3).status_code == 200
    time.sleep(0.5)
    run = api.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "failed"
    assert run["error"].startswith("its driver stopped: box/1/forge-run last renewed the run's lease")
    assert run["completed_at"] is not None
    steps = {st["id"]: st["status"] for p in run["phases"] for t in p["tasks"] for st in t["steps"]}
    assert steps[step] == "cancelled" and "running" not in steps.values()
    late = lease(api, run_id, "box/1/forge-run", 60)  # the driver comes back: it is told to stop
    assert late.status_code == 409
    assert "is failed: its lease is not renewed (its driver stopped" in late.json()["error"]["message"]


def test_a_run_with_a_live_lease_or_none_stays_open(api: Api) -> None:
    unleased = create_run(api)["id"]
    leased = create_run(api)["id"]
    assert lease(api, leased, "box/1/forge-run", 60).status_code == 200
    assert api.get(f"/v1/runs/{unleased}").json()["status"] == "pending"
    assert api.get(f"/v1/runs/{leased}").json()["status"] == "pending"


@pytest.mark.parametrize("body", [{"driver": "d", "ttl_seconds": 0}, {"driver": "", "ttl_seconds": 5},
                                  {"driver": "d", "ttl_seconds": 86401}, {"ttl_seconds": 5}])
def test_a_bad_lease_is_refused(api: Api, body: dict[str, Any]) -> None:
    run_id = create_run(api)["id"]
    assert api.put(f"/v1/runs/{run_id}/lease", "worker", json=body).status_code == 400


def test_a_lease_needs_the_status_permission(api: Api) -> None:
    run_id = create_run(api)["id"]
    refused = api.put(f"/v1/runs/{run_id}/lease", "viewer", json={"driver": "d", "ttl_seconds": 5})
    assert refused.status_code == 403


@pytest.fixture
def sweeping_api(api: Api) -> Iterator[Api]:
    """A second API on the same database sweeping lapsed leases every 0.2 s."""
    leases = LeaseSettings(ttl_seconds=1, renew_seconds=0.5, sweep_seconds=0.2)
    settings = api.settings.model_copy(update={"leases": leases})
    with TestClient(create_app(settings, load_plugins(settings.plugins)), raise_server_exceptions=False) as client:
        yield Api(client, settings, platform_key(settings))


def test_the_api_sweeps_lapsed_runs_nobody_reads(api: Api, sweeping_api: Api) -> None:
    run_id = create_run(api)["id"]
    assert status(api, "runs", run_id, status="running") == 200
    assert lease(api, run_id, "box/1/forge-run", 0.2).status_code == 200
    deadline = time.monotonic() + 10
    while True:  # the listing does not close runs itself: the sweep does
        [listed] = [r for r in api.get("/v1/runs", params={"limit": 200}).json()["runs"] if r["id"] == run_id]
        if listed["status"] == "failed":
            break
        assert time.monotonic() < deadline, "the lapsed run was never swept"
        time.sleep(0.1)
    assert listed["error"].startswith("its driver stopped")


def test_a_renewal_must_come_before_the_lease_lapses() -> None:
    with pytest.raises(ValueError, match=r"renew_seconds \(10\) must be below leases\.ttl_seconds"):
        LeaseSettings(ttl_seconds=10, renew_seconds=10)
