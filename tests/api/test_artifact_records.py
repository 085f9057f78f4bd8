"""``PUT``/``GET /v1/runs/{run_id}/artifacts/{project}/{artifact}``: what the artifact job did with
one planned artifact, recorded on its run (idempotently) and returned in ``GET /v1/runs/{id}``."""

from __future__ import annotations

from typing import Any

from .conftest import Api, create_run, unique_repo
from .test_runs import FULL_ARTIFACT

DIGEST = "sha256:" + "b" * 64
PLAN = {"phases": [], "artifacts": [FULL_ARTIFACT]}  # project "api", artifact "api"
RECORD: dict[str, Any] = {
    "type": "container", "status": "success", "digest": DIGEST,
    "tracking_oci_uri": "oci-layout:/state/oci/monorepo/api/api:sha-" + "c" * 40,
    "tracking_oci_digest": "sha256:" + "d" * 64,
    "primary_published_uri": f"127.0.0.1:5000/api:sha-{'c' * 40}@{DIGEST}",
    "targets": [
        {"publisher": "registry", "type": "docker", "outcome": "published",
         "uri": f"127.0.0.1:5000/api:sha-{'c' * 40}@{DIGEST}", "digest": DIGEST},
        {"publisher": "shelf", "type": "shelf", "outcome": "not_planned", "note": "cannot plan; use --publish"},
    ],
}


def planned_run(api: Api, repository: str | None = None) -> str:
    run = create_run(api, repository)
    assert api.post(f"/v1/runs/{run['id']}/plan", "worker", json=PLAN).status_code == 201
    return str(run["id"])


def without_time(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "updated_at"}


def test_a_record_is_stored_returned_and_shown_beside_the_planned_artifacts(api: Api) -> None:
    run_id = planned_run(api)
    put = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=RECORD)
    assert put.status_code == 200, put.text
    expected = {"project": "api", "artifact": "api", "error": None, **RECORD}
    expected["targets"] = [{"uri": None, "digest": None, "error": None, "note": None, **t} for t in RECORD["targets"]]
    assert without_time(put.json()) == expected
    assert without_time(api.get(f"/v1/runs/{run_id}/artifacts/api/api", "viewer").json()) == expected
    run = api.get(f"/v1/runs/{run_id}", "viewer").json()
    assert [without_time(r) for r in run["artifact_records"]] == [expected]
    assert run["artifacts"][0]["spec"]["name"] == "api"


def test_the_same_report_twice_changes_nothing_and_a_new_one_replaces_it(api: Api) -> None:
    run_id = planned_run(api)
    first = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=RECORD).json()
    again = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=RECORD).json()
    assert without_time(again) == without_time(first)
    failed = {**RECORD, "status": "failed", "error": "target 'registry' (docker): down", "targets": []}
    replaced = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=failed).json()
    assert (replaced["status"], replaced["error"], replaced["targets"]) == ("failed", failed["error"], [])
    run = api.get(f"/v1/runs/{run_id}", "viewer").json()
    assert len(run["artifact_records"]) == 1 and run["artifact_records"][0]["status"] == "failed"


def test_an_artifact_the_run_did_not_plan_is_not_found(api: Api) -> None:
    run_id = planned_run(api)
    answer = api.put(f"/v1/runs/{run_id}/artifacts/api/other", "worker", json=RECORD)
    assert answer.status_code == 404, answer.text
    assert "no planned artifact 'other' of project 'api'" in answer.json()["error"]["message"]
    assert api.get(f"/v1/runs/{run_id}/artifacts/api/api", "viewer").status_code == 404  # not reported yet


def test_bad_records_are_refused_naming_the_field(api: Api) -> None:
    run_id = planned_run(api)
    for body, field in (
        ({**RECORD, "status": "published"}, "status"),
        ({**RECORD, "targets": [{**RECORD["targets"][0], "outcome": "maybe"}]}, "outcome"),
        ({**RECORD, "colour": "blue"}, "colour"),
    ):
        answer = api.put(f"/v1/runs/{run_id}/artifacts/api/api", "worker", json=body)
        assert answer.status_code == 400, answer.text  # the API answers invalid input with 400
        assert field in answer.text
    assert api.get(f"/v1/runs/{run_id}", "viewer").json()["artifact_records"] == []


def test_only_workers_record_and_another_repositorys_token_sees_nothing(api: Api) -> None:
    repository = unique_repo()
    run_id = planned_run(api, repository)
    assert api.put(f"/v1/runs/{run_id}/artifacts/api/api", "viewer", json=RECORD).status_code == 403
    foreign = {"Authorization": f"Bearer {api.token('worker', repository=unique_repo())}"}
    answer = api.client.put(f"/v1/runs/{run_id}/artifacts/api/api", json=RECORD, headers=foreign)
    assert answer.status_code == 404, answer.text
    reader = {"Authorization": f"Bearer {api.token('viewer', repository=unique_repo())}"}
    hidden = api.client.get(f"/v1/runs/{run_id}/artifacts/api/api", headers=reader)
    assert hidden.status_code == 404 and hidden.json()["error"]["message"] == f"pipeline run {run_id} does not exist"
    own = {"Authorization": f"Bearer {api.token('worker', repository=repository)}"}
    assert api.client.put(f"/v1/runs/{run_id}/artifacts/api/api", json=RECORD, headers=own).status_code == 200
