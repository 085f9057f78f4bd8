"""Deployments and approvals: supersession, protected environments, expiry and revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .conftest import Api, create_release, unique_repo

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def approve(api: Api, release_id: str, environment: str = "production", **fields: Any) -> Any:
    body = {"release_id": release_id, "environment": environment, "justification": "CAB-42 ok"}
    carol = api.headers("approver", subject="carol")
    response = api.post("/v1/approvals", json={**body, **fields}, headers=carol)
    assert response.status_code == 201, response.text
    return response.json()


def deploy(api: Api, release_id: str, environment: str, **fields: Any) -> httpx.Response:
    body = {"release_id": release_id, "environment": environment, **fields}
    return api.post("/v1/deployments", json=body, headers=api.headers("deployer", subject="dave"))


def test_a_new_deployment_supersedes_the_active_one(api: Api) -> None:
    repository = unique_repo()
    first, second = create_release(api, repository), create_release(api, repository)
    one = deploy(api, first["id"], "dev")
    assert one.status_code == 201
    assert (one.json()["status"], one.json()["deployed_by"]) == ("active", "dave")
    two = deploy(api, second["id"], "dev", gitops_commit_sha="abcdef1")
    assert two.status_code == 201
    current = api.get(f"/v1/deployments/dev/{repository}/svc", "viewer").json()
    assert (current["id"], current["release_number"]) == (two.json()["id"], 2)
    history = api.get(f"/v1/deployments/dev/{repository}/svc/history", "viewer").json()
    assert history["total"] == 2
    assert [d["status"] for d in history["deployments"]] == ["active", "superseded"]


def test_no_deployment_is_not_found(api: Api) -> None:
    assert api.get(f"/v1/deployments/dev/{unique_repo()}/svc").status_code == 404


def test_production_without_an_active_approval_is_refused(api: Api) -> None:
    release = create_release(api, unique_repo())
    response = deploy(api, release["id"], "production")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "authorization_failed"
    assert "approval" in response.json()["error"]["message"]


def test_production_with_an_approval_records_it(api: Api) -> None:
    release = create_release(api, unique_repo())
    approval = approve(api, release["id"])
    assert (approval["approver"], approval["status"]) == ("carol", "active")
    response = deploy(api, release["id"], "production")
    assert response.status_code == 201
    assert response.json()["approval_id"] == approval["id"]


def test_an_approval_of_another_release_does_not_count(api: Api) -> None:
    repository = unique_repo()
    first, second = create_release(api, repository), create_release(api, repository)
    approval = approve(api, first["id"])
    assert deploy(api, second["id"], "production", approval_id=approval["id"]).status_code == 403


def test_a_revoked_approval_no_longer_allows_deploying(api: Api) -> None:
    release = create_release(api, unique_repo())
    approval = approve(api, release["id"])
    revoked = api.delete(f"/v1/approvals/{approval['id']}", "approver")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert deploy(api, release["id"], "production").status_code == 403
    assert api.get(f"/v1/approvals/{release['id']}/production").status_code == 404
    assert api.delete(f"/v1/approvals/{approval['id']}", "approver").status_code == 409


def test_approvals_are_listed_and_the_active_one_is_found(api: Api) -> None:
    release = create_release(api, unique_repo())
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    approval = approve(api, release["id"], expires_at=expires)
    assert approval["expires_at"]
    active = api.get(f"/v1/approvals/{release['id']}/production").json()
    assert (active["id"], active["justification"]) == (approval["id"], "CAB-42 ok")
    listed = api.get("/v1/approvals", params={"release_id": release["id"]}).json()
    assert listed["total"] == 1


def test_an_approval_for_an_unknown_environment_is_invalid(api: Api) -> None:
    release = create_release(api, unique_repo())
    body = {"release_id": release["id"], "environment": "moon", "justification": "x"}
    response = api.post("/v1/approvals", "approver", json=body)
    assert response.status_code == 400
    assert "moon" in response.json()["error"]["message"]
    assert response.json()["error"]["details"]["where"] == "environment"


def test_an_approval_expiring_in_the_past_is_invalid(api: Api) -> None:
    release = create_release(api, unique_repo())
    body = {
        "release_id": release["id"],
        "environment": "production",
        "justification": "x",
        "expires_at": "2001-01-01T00:00:00Z",
    }
    assert api.post("/v1/approvals", "approver", json=body).status_code == 400


def test_an_approval_for_an_unknown_release_is_not_found(api: Api) -> None:
    body = {"release_id": UNKNOWN, "environment": "production", "justification": "x"}
    assert api.post("/v1/approvals", "approver", json=body).status_code == 404


def test_a_deployment_to_an_unknown_environment_is_invalid(api: Api) -> None:
    release = create_release(api, unique_repo())
    assert deploy(api, release["id"], "moon").status_code == 400


def test_a_deployment_of_an_unknown_release_is_not_found(api: Api) -> None:
    assert deploy(api, UNKNOWN, "dev").status_code == 404


def report(api: Api, deployment_id: str, **body: Any) -> httpx.Response:
    return api.put(f"/v1/deployments/{deployment_id}/status", "worker", json=body)


def test_a_pending_deployment_supersedes_only_when_its_pointer_lands(api: Api) -> None:
    repository = unique_repo()
    first, second = create_release(api, repository), create_release(api, repository)
    assert deploy(api, first["id"], "dev").status_code == 201
    pending = deploy(api, second["id"], "dev", status="pending")
    assert pending.status_code == 201, pending.text
    assert (pending.json()["status"], pending.json()["gitops_commit_sha"]) == ("pending", None)
    current = api.get(f"/v1/deployments/dev/{repository}/svc", "viewer").json()
    assert current["release_id"] == first["id"]  # still the live one
    sha = "a" * 40
    landed = report(api, pending.json()["id"], status="active", gitops_commit_sha=sha)
    assert landed.status_code == 200, landed.text
    assert (landed.json()["status"], landed.json()["gitops_commit_sha"]) == ("active", sha)
    again = report(api, pending.json()["id"], status="active", gitops_commit_sha=sha)
    assert (again.status_code, again.json()["status"]) == (200, "active")  # a redelivered report
    history = api.get(f"/v1/deployments/dev/{repository}/svc/history", "viewer").json()
    assert [(d["release_id"], d["status"]) for d in history["deployments"]] == [
        (second["id"], "active"), (first["id"], "superseded")]


def test_a_failed_deployment_keeps_its_reason_and_the_active_one(api: Api) -> None:
    repository = unique_repo()
    first, second = create_release(api, repository), create_release(api, repository)
    assert deploy(api, first["id"], "dev").status_code == 201
    pending = deploy(api, second["id"], "dev", status="pending").json()
    failed = report(api, pending["id"], status="failed", reason="push rejected 5 times")
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["reason"]) == ("failed", "push rejected 5 times")
    assert api.get(f"/v1/deployments/dev/{repository}/svc").json()["release_id"] == first["id"]
    late = report(api, pending["id"], status="active", gitops_commit_sha="b" * 40)
    assert late.status_code == 409, late.text
    assert "is failed" in late.json()["error"]["message"]


def test_a_status_report_needs_what_its_status_needs(api: Api) -> None:
    release = create_release(api, unique_repo())
    pending = deploy(api, release["id"], "dev", status="pending").json()
    for body in ({"status": "active"}, {"status": "failed"}, {"status": "superseded", "reason": "x"}):
        invalid = report(api, pending["id"], **body)
        assert invalid.status_code == 400, invalid.text
        assert invalid.json()["error"]["code"] == "invalid_request"
    assert report(api, UNKNOWN, status="failed", reason="x").status_code == 404
    refused = api.put(f"/v1/deployments/{pending['id']}/status", "viewer",
                      json={"status": "failed", "reason": "x"})
    assert refused.status_code == 403
    assert api.get(f"/v1/deployments/dev/{release['repository']}/svc/history").json()["deployments"][0][
        "status"] == "pending"
