"""Releases: gapless numbers, lookups by number, SHA, tag or alias, and alias moves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Api, create_release, create_run, new_sha, unique_repo

ARTIFACT = {
    "name": "api-image",
    "type": "container",
    "tracking_oci_uri": "oci://reg/acme/api-tracking:abc",
    "primary_published_uri": "reg/acme/api:abc",
}


def test_release_records_artifacts_trigger_and_numeric_alias(api: Api) -> None:
    repository = unique_repo()
    run = create_run(api, repository=repository)
    release = create_release(
        api,
        repository,
        sha=run["commit_sha"],
        pipeline_run_id=run["id"],
        oci_uri="oci://reg/acme/svc-release",
        artifacts=[ARTIFACT],
        trigger={"trigger_type": "branch_push", "branch": "main"},
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
    tagged = {"trigger_type": "tag", "tag": "v1.2"}
    release = create_release(api, repository, sha=sha, trigger=tagged)
    create_release(api, repository)
    for ref in ("1", sha, sha[:10], "v1.2"):
        found = api.get(f"/v1/releases/{repository}/svc/{ref}", "viewer")
        assert found.status_code == 200, ref
        assert found.json()["id"] == release["id"]
    assert api.get(f"/v1/releases/{repository}/svc/v9", "viewer").status_code == 404


def test_aliases_are_created_moved_and_deleted(api: Api) -> None:
    repository = unique_repo()
    first, second = create_release(api, repository), create_release(api, repository)
    alias_url = f"/v1/releases/{repository}/svc/aliases/feature/login"
    lookup = f"/v1/releases/{repository}/svc/feature/login"
    set_first = api.put(alias_url, "releaser", json={"release": "1", "alias_type": "branch"})
    assert set_first.status_code == 200
    assert api.get(lookup).json()["id"] == first["id"]
    api.put(alias_url, "releaser", json={"release": "2", "alias_type": "branch"})
    assert api.get(lookup).json()["id"] == second["id"]
    before = api.get(f"/v1/releases/{repository}/svc/1").json()
    assert "feature/login" not in [a["alias"] for a in before["aliases"]]
    assert api.delete(alias_url, "releaser").status_code == 204
    assert api.get(lookup).status_code == 404
    assert api.delete(alias_url, "releaser").status_code == 404


def test_numeric_aliases_cannot_be_set_or_deleted(api: Api) -> None:
    repository = unique_repo()
    create_release(api, repository)
    put = api.put(f"/v1/releases/{repository}/svc/aliases/7", json={"release": "1"})
    assert put.status_code == 400
    assert api.delete(f"/v1/releases/{repository}/svc/aliases/1").status_code == 400


def test_a_release_for_an_unknown_run_is_not_found_and_takes_no_number(api: Api) -> None:
    repository = unique_repo()
    body = {
        "repository": repository,
        "project": "svc",
        "commit_sha": new_sha(),
        "pipeline_run_id": "00000000-0000-4000-8000-000000000000",
    }
    response = api.post("/v1/releases", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["details"]["where"] == "pipeline_run_id"
    assert create_release(api, repository)["release_number"] == 1


def test_the_same_commit_twice_is_a_conflict_and_takes_no_number(api: Api) -> None:
    repository = unique_repo()
    sha = new_sha()
    create_release(api, repository, sha=sha)
    body = {"repository": repository, "project": "svc", "commit_sha": sha}
    again = api.post("/v1/releases", json=body)
    assert again.status_code == 409
    assert create_release(api, repository)["release_number"] == 2


def test_duplicate_artifact_names_are_invalid(api: Api) -> None:
    body = {
        "repository": unique_repo(),
        "project": "svc",
        "commit_sha": new_sha(),
        "artifacts": [ARTIFACT, ARTIFACT],
    }
    assert api.post("/v1/releases", json=body).status_code == 400


def test_listing_is_newest_first_and_paginated(api: Api) -> None:
    repository = unique_repo()
    for _ in range(5):
        create_release(api, repository)
    page = api.get(f"/v1/releases/{repository}/svc", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert [r["release_number"] for r in page["releases"]] == [4, 3]


def test_fifty_concurrent_creations_number_one_to_fifty_exactly_once(api: Api) -> None:
    repository = unique_repo()

    def release(_: int) -> int:
        body = {"repository": repository, "project": "svc", "commit_sha": new_sha()}
        response = api.post("/v1/releases", "releaser", json=body)
        assert response.status_code == 201, response.text
        number: int = response.json()["release_number"]
        return number

    with ThreadPoolExecutor(max_workers=50) as pool:
        numbers = list(pool.map(release, range(50)))
    assert sorted(numbers) == list(range(1, 51))


def test_the_release_image_is_recorded_once(api: Api) -> None:
    repository = unique_repo()
    release = create_release(api, repository)
    path = f"/v1/releases/{repository}/svc/{release['commit_sha']}/image"
    image = {"oci_uri": f"127.0.0.1:5000/r/svc:{release['commit_sha']}", "oci_digest": "sha256:" + "1" * 64}
    first = api.put(path, "releaser", json=image)
    assert first.status_code == 200, first.text
    assert (first.json()["oci_uri"], first.json()["oci_digest"]) == (image["oci_uri"], image["oci_digest"])
    assert api.put(path, "releaser", json=image).status_code == 200  # the same again: nothing changes
    moved = api.put(path, "releaser", json={**image, "oci_uri": "elsewhere/r/svc:x"})
    assert (moved.status_code, moved.json()["oci_uri"]) == (200, image["oci_uri"])  # same digest: kept
    other = api.put(path, "releaser", json={**image, "oci_digest": "sha256:" + "2" * 64})
    assert other.status_code == 409, other.text
    assert image["oci_digest"] in other.json()["error"]["message"]
    assert api.get(f"/v1/releases/{repository}/svc/1").json()["oci_digest"] == image["oci_digest"]
    assert api.put(path, "viewer", json=image).status_code == 403
    bad = api.put(path, "releaser", json={**image, "oci_digest": "sha256:short"})
    assert bad.status_code == 400, bad.text  # the API answers invalid bodies with 400
    assert api.put(f"/v1/releases/{repository}/svc/9/image", json=image).status_code == 404
