"""Releases: gapless numbers, lookups by number, SHA, tag or alias, and alias moves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Api, create_release, create_run, new_sha, unique_repo

ARTIFACT = {"name": "api-image", "type": "container", "tracking_oci_uri": "oci://reg/acme/api-tracking:abc",
            "primary_published_uri": "reg/acme/api:abc"}


def test_release_records_artifacts_trigger_and_numeric_alias(api: Api) -> None:
    repository = unique_repo()
    run = create_run(api, repository=repository)
    release = create_release(
        api, repository, sha=run["commit_sha"], pipeline_run_id=run["id"], oci_uri="oci://reg/acme/svc-release",
        artifacts=[ARTIFACT], trigger={"trigger_type": "branch_push", "branch": "main"},
    )
    assert release["release_number"] == 1
    assert release["canonical_id"] == f"{repository}/svc/{run['commit_sha']}"
    assert release["artifacts"][0]["name"] == "api-image"
    assert release["trigger"]["trigger_type"] == "branch_push"
    assert release["trigger"]["triggered_by"] == "alice"
    assert {"alias": "1", "alias_type": "numeric"} in release["aliases"]
    assert release["created_by"] == "alice"


def test_numbers_count_up_per_project(api: Api) -> None:
    repository = unique_repo()
    assert [create_release(api, repository, "a")["release_number"] for _ in range(3)] == [1, 2, 3]
    assert create_release(api, repository, "b")["release_number"] == 1


def test_get_by_number_sha_prefix_tag_and_alias(api: Api) -> None:
    repository = unique_repo()
    sha = new_sha()
    release = create_release(api, repository, sha=sha, trigger={"trigger_type": "tag", "tag": "v1.2.3"})
    create_release(api, repository)
    owner, name = repository.split("/")
    for ref in ("1", sha, sha[:10], "v1.2.3"):
        found = api.client.get(f"/v1/releases/{owner}/{name}/svc/{ref}", headers=api.headers("viewer"))
        assert found.status_code == 200, ref
        assert found.json()["id"] == release["id"]
    missing = api.client.get(f"/v1/releases/{owner}/{name}/svc/v9", headers=api.headers("viewer"))
    assert missing.status_code == 404


def test_aliases_are_created_moved_and_deleted(api: Api) -> None:
    repository = unique_repo()
    owner, name = repository.split("/")
    first, second = create_release(api, repository), create_release(api, repository)
    url = f"/v1/releases/{owner}/{name}/svc/aliases/feature/login"
    set_first = api.client.put(url, json={"release": "1", "alias_type": "branch"}, headers=api.headers("releaser"))
    assert set_first.status_code == 200
    assert api.client.get(f"/v1/releases/{owner}/{name}/svc/feature/login", headers=api.as_admin()).json()["id"] == first["id"]
    api.client.put(url, json={"release": "2", "alias_type": "branch"}, headers=api.headers("releaser"))
    moved = api.client.get(f"/v1/releases/{owner}/{name}/svc/feature/login", headers=api.as_admin()).json()
    assert moved["id"] == second["id"]
    before = api.client.get(f"/v1/releases/{owner}/{name}/svc/1", headers=api.as_admin()).json()
    assert "feature/login" not in [a["alias"] for a in before["aliases"]]
    assert api.client.delete(url, headers=api.headers("releaser")).status_code == 204
    assert api.client.get(f"/v1/releases/{owner}/{name}/svc/feature/login", headers=api.as_admin()).status_code == 404
    assert api.client.delete(url, headers=api.headers("releaser")).status_code == 404


def test_numeric_aliases_cannot_be_set_or_deleted(api: Api) -> None:
    repository = unique_repo()
    owner, name = repository.split("/")
    create_release(api, repository)
    put = api.client.put(f"/v1/releases/{owner}/{name}/svc/aliases/7", json={"release": "1"}, headers=api.as_admin())
    assert put.status_code == 400
    assert api.client.delete(f"/v1/releases/{owner}/{name}/svc/aliases/1", headers=api.as_admin()).status_code == 400


def test_a_release_for_an_unknown_run_is_not_found_and_takes_no_number(api: Api) -> None:
    repository = unique_repo()
    response = api.client.post(
        "/v1/releases",
        json={"repository": repository, "project": "svc", "commit_sha": new_sha(),
              "pipeline_run_id": "00000000-0000-4000-8000-000000000000"},
        headers=api.as_admin(),
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"]["where"] == "pipeline_run_id"
    assert create_release(api, repository)["release_number"] == 1


def test_the_same_commit_twice_is_a_conflict_and_takes_no_number(api: Api) -> None:
    repository = unique_repo()
    sha = new_sha()
    create_release(api, repository, sha=sha)
    again = api.client.post(
        "/v1/releases", json={"repository": repository, "project": "svc", "commit_sha": sha}, headers=api.as_admin()
    )
    assert again.status_code == 409
    assert create_release(api, repository)["release_number"] == 2


def test_duplicate_artifact_names_are_invalid(api: Api) -> None:
    response = api.client.post(
        "/v1/releases",
        json={"repository": unique_repo(), "project": "svc", "commit_sha": new_sha(), "artifacts": [ARTIFACT, ARTIFACT]},
        headers=api.as_admin(),
    )
    assert response.status_code == 400


def test_listing_is_newest_first_and_paginated(api: Api) -> None:
    repository = unique_repo()
    owner, name = repository.split("/")
    for _ in range(5):
        create_release(api, repository)
    page = api.client.get(f"/v1/releases/{owner}/{name}/svc", params={"limit": 2, "offset": 1}, headers=api.as_admin()).json()
    assert page["total"] == 5
    assert [r["release_number"] for r in page["releases"]] == [4, 3]


def test_fifty_concurrent_creations_number_one_to_fifty_exactly_once(api: Api) -> None:
    repository = unique_repo()
    headers = api.headers("releaser")

    def release(_: int) -> int:
        response = api.client.post(
            "/v1/releases", json={"repository": repository, "project": "svc", "commit_sha": new_sha()}, headers=headers
        )
        assert response.status_code == 201, response.text
        number: int = response.json()["release_number"]
        return number

    with ThreadPoolExecutor(max_workers=50) as pool:
        numbers = list(pool.map(release, range(50)))
    assert sorted(numbers) == list(range(1, 51))
