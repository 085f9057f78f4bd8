"""The ``release`` job end to end: through the Platform API served on loopback (PostgreSQL) into the
embedded OCI layout store and the real docker-registry."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from forge_core.adapters.oci import open_store
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.adapters.oci.release_image import read_release_image
from forge_core.builtin.release import ReleaseHandler
from forge_core.domain.models import Job, JobResult, JobStatus
from forge_core.domain.oci import parse_reference
from forge_core.domain.release_image import ARTIFACT_TYPE
from forge_core.domain.resources import LayerFile, parse_resources
from forge_core.testing.registry import RegistryServer

from .conftest import Platform

IMAGE_DIGEST = "sha256:" + "b" * 64
TRACKING_DIGEST = "sha256:" + "c" * 64


def new_sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def deployment(image: str = "@artifact(api).image") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
        "spec": {"selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "api", "image": image}]}}},
    }


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-release"},
            "data": {"tracking": "@artifact(api).tracking"}}


def payload(repository: str, commit: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "repository": repository,
        "project": {"name": "api", "path": "services/api"},
        "commit": commit,
        "committed_at": "2026-11-30T09:15:00+01:00",
        "branch": "main",
        "trigger": {"release": True, "reason": "branch main"},
        "resources": [deployment(), config_map()],
        "artifacts": [{
            "name": "api", "type": "container",
            "tracking": f"127.0.0.1:5000/r/api/api:sha-{commit}", "tracking_digest": TRACKING_DIGEST,
            "published": [
                {"publisher": "docker", "type": "container", "uri": "reg.example/acme/api:1.2.0",
                 "digest": IMAGE_DIGEST},
                {"publisher": "s3", "type": "archive", "uri": "s3://bucket/api.tgz", "digest": None},
            ],
        }],
    }
    body.update(fields)
    return body


def run_job(platform: Platform, tmp_path: Path, store: Any, repository: str, commit: str,
            scoped_to: str | None = None, **fields: Any) -> JobResult:
    job = Job(id=f"job-{uuid.uuid4().hex[:8]}", type="release", run_id=platform.new_run(repository, commit),
              payload=payload(repository, commit, **fields))
    return ReleaseHandler().handle(job, platform.context(tmp_path, store, repository=scoped_to))


def repo() -> str:
    return f"acme/mono{uuid.uuid4().hex[:8]}"


def test_two_commits_are_releases_one_and_two_and_the_same_commit_again_changes_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    repository = repo()
    store = LayoutStore(tmp_path / "oci")
    first_commit, second_commit = new_sha(), new_sha()
    first = run_job(platform, tmp_path, store, repository, first_commit)
    assert first.status is JobStatus.SUCCESS, first.error
    second = run_job(platform, tmp_path, store, repository, second_commit)
    assert second.status is JobStatus.SUCCESS, second.error
    assert (first.output["release_number"], second.output["release_number"]) == (1, 2)
    assert first.output["pushed"] and second.output["pushed"]

    recorded = platform.call("GET", f"/v1/releases/{repository}/api/1").json()
    name = repository.split("/")[1]
    assert recorded["commit_sha"] == first_commit
    assert recorded["oci_uri"] == f"oci-layout:{tmp_path / 'oci' / name / 'api'}:{first_commit}"
    assert recorded["oci_digest"] == first.output["oci_digest"]
    assert store.resolve(f"{name}/api", first_commit).digest == recorded["oci_digest"]
    artifact = recorded["artifacts"][0]
    assert (artifact["tracking_oci_digest"], artifact["primary_published_uri"]) == (
        TRACKING_DIGEST, "reg.example/acme/api:1.2.0")
    assert recorded["trigger"]["trigger_type"] == "branch_push"

    blobs = sorted((tmp_path / "oci" / name / "api" / "blobs" / "sha256").iterdir())
    again = run_job(platform, tmp_path, store, repository, first_commit)
    assert again.status is JobStatus.SUCCESS, again.error
    assert again.output["release_id"] == first.output["release_id"]
    assert (again.output["release_number"], again.output["oci_digest"]) == (1, first.output["oci_digest"])
    assert again.output["pushed"] is False
    assert sorted((tmp_path / "oci" / name / "api" / "blobs" / "sha256").iterdir()) == blobs
    listed = platform.call("GET", f"/v1/releases/{repository}/api").json()
    assert listed["total"] == 2


def test_aliases_number_tag_version_branch_and_custom(platform: Platform, tmp_path: Path) -> None:
    repository = repo()
    store = LayoutStore(tmp_path / "oci")
    first_commit = new_sha()
    branch = run_job(platform, tmp_path, store, repository, first_commit, aliases=["edge"])
    assert branch.status is JobStatus.SUCCESS, branch.error
    assert branch.output["aliases"] == ["1", "main-1", "edge"]
    tagged = run_job(platform, tmp_path, store, repository, new_sha(), branch=None, tag="api/v1.2.0",
                     aliases=["edge"])
    assert tagged.status is JobStatus.SUCCESS, tagged.error
    assert tagged.output["aliases"] == ["2", "api/v1.2.0", "1.2.0", "edge"]
    release = platform.call("GET", f"/v1/releases/{repository}/api/2").json()
    assert {(a["alias"], a["alias_type"]) for a in release["aliases"]} == {
        ("2", "numeric"), ("api/v1.2.0", "tag"), ("1.2.0", "tag"), ("edge", "custom")}
    assert release["trigger"]["trigger_type"] == "tag"
    assert platform.call("GET", f"/v1/releases/{repository}/api/main-1").json()["release_number"] == 1
    assert platform.call("GET", f"/v1/releases/{repository}/api/1.2.0").json()["release_number"] == 2
    assert platform.call("GET", f"/v1/releases/{repository}/api/edge").json()["release_number"] == 2  # moved
    again = run_job(platform, tmp_path, store, repository, first_commit, aliases=["edge", "old"])
    assert again.status is JobStatus.SUCCESS, again.error
    # the old commit run again keeps its number and gets a new alias, but does not take "edge" back
    assert platform.call("GET", f"/v1/releases/{repository}/api/edge").json()["release_number"] == 2
    assert platform.call("GET", f"/v1/releases/{repository}/api/old").json()["release_number"] == 1
    image = read_release_image(open_store(parse_reference(release["oci_uri"])), release["oci_uri"])
    assert image.metadata.aliases == ("2", "api/v1.2.0", "1.2.0", "edge")
    assert image.metadata.trigger.tag == "api/v1.2.0"


def test_custom_alias_templates_are_filled_in_and_stored_through_the_api(platform: Platform, tmp_path: Path) -> None:
    repository = repo()
    store = LayoutStore(tmp_path / "oci")
    commit = new_sha()
    templates = ["latest", "{branch}-latest", "sha-{shortCommit}", "build-{number}", "v{version}"]
    made = run_job(platform, tmp_path, store, repository, commit, aliases=templates)
    assert made.status is JobStatus.SUCCESS, made.error
    assert made.output["aliases"] == ["1", "main-1", "latest", "main-latest", f"sha-{commit[:7]}", "build-1"]
    assert made.output["skipped_aliases"] == [{"template": "v{version}", "reason": "release 1 has no {version}"}]
    release = platform.call("GET", f"/v1/releases/{repository}/api/sha-{commit[:7]}").json()
    assert release["release_number"] == 1
    assert {(a["alias"], a["alias_type"]) for a in release["aliases"]} >= {
        ("latest", "custom"), ("main-latest", "custom"), (f"sha-{commit[:7]}", "custom"), ("build-1", "custom")}
    image = read_release_image(open_store(parse_reference(release["oci_uri"])), release["oci_uri"])
    assert "build-1" in image.metadata.aliases

    tagged = run_job(platform, tmp_path, store, repository, new_sha(), tag="api/v2.0.0", aliases=templates)
    assert tagged.status is JobStatus.SUCCESS, tagged.error
    assert {"v2.0.0", "build-2", "latest"} <= set(tagged.output["aliases"])
    assert platform.call("GET", f"/v1/releases/{repository}/api/latest").json()["release_number"] == 2  # moved


def test_a_bad_alias_template_in_the_payload_fails_naming_the_field(platform: Platform, tmp_path: Path) -> None:
    repository = repo()
    result = run_job(platform, tmp_path, LayoutStore(tmp_path / "oci"), repository, new_sha(),
                     aliases=["ok", "{nope}"])
    assert result.status is JobStatus.FAILED
    assert result.error is not None
    assert "project api: release.aliases[1]: alias template '{nope}': unknown placeholder {nope}" in result.error
    assert platform.call("GET", f"/v1/releases/{repository}/api").json()["total"] == 0  # no number used up


def test_the_image_reads_back_with_pinned_references_and_skopeo_accepts_it(
    platform: Platform, tmp_path: Path, oci_registry: RegistryServer
) -> None:
    repository, commit = repo(), new_sha()
    with RegistryStore(oci_registry.address) as store:
        result = run_job(platform, tmp_path, store, repository, commit)
        assert result.status is JobStatus.SUCCESS, result.error
        name = repository.split("/")[1]
        assert result.output["oci_uri"] == f"{oci_registry.address}/{name}/api:{commit}"
        image = read_release_image(store, result.output["oci_uri"])
    assert image.digest == result.output["oci_digest"]
    metadata = image.metadata
    assert (metadata.repository, metadata.project, metadata.commit, metadata.release_number) == (
        repository, "api", commit, 1)
    assert metadata.created.isoformat() == "2026-11-30T08:15:00+00:00"  # the commit's time, in UTC
    (artifact,) = metadata.artifacts
    assert (artifact.tracking.digest, artifact.primary.uri, artifact.primary.digest) == (
        TRACKING_DIGEST, "reg.example/acme/api:1.2.0", IMAGE_DIGEST)
    assert list(image.files) == ["0001-configmap-api-release.yaml", "0002-deployment-api.yaml"]
    resources = parse_resources(LayerFile(name=k, data=v) for k, v in image.files.items())
    deployed = next(r for r in resources if r.kind == "Deployment")
    containers = deployed.body["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == f"reg.example/acme/api:1.2.0@{IMAGE_DIGEST}"
    tracked = next(r for r in resources if r.kind == "ConfigMap").body["data"]["tracking"]
    assert tracked == f"127.0.0.1:5000/r/api/api:sha-{commit}@{TRACKING_DIGEST}"
    inspected = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{result.output['oci_uri']}"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    manifest = json.loads(inspected.stdout)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2026-11-30T08:15:00Z"


def test_rebuilt_from_the_same_commit_in_a_fresh_store_it_has_the_same_digest(
    platform: Platform, tmp_path: Path
) -> None:
    repository, commit = repo(), new_sha()
    first = run_job(platform, tmp_path, LayoutStore(tmp_path / "one"), repository, commit)
    assert first.status is JobStatus.SUCCESS, first.error
    fresh = LayoutStore(tmp_path / "two")
    again = run_job(platform, tmp_path, fresh, repository, commit)  # the store lacks it: built again
    assert again.status is JobStatus.SUCCESS, again.error
    assert again.output["pushed"] is True
    assert again.output["oci_digest"] == first.output["oci_digest"]
    name = repository.split("/")[1]
    assert fresh.resolve(f"{name}/api", commit).digest == first.output["oci_digest"]


def test_a_tag_holding_a_different_image_is_refused(platform: Platform, tmp_path: Path) -> None:
    # two owners' repositories of one name share the image path <name>/<project>:<commit>
    name, commit = f"mono{uuid.uuid4().hex[:8]}", new_sha()
    store = LayoutStore(tmp_path / "oci")
    first = run_job(platform, tmp_path, store, f"acme/{name}", commit)
    assert first.status is JobStatus.SUCCESS, first.error
    refused = run_job(platform, tmp_path, store, f"other/{name}", commit)
    assert refused.status is JobStatus.FAILED
    error = refused.error or ""
    assert "project api" in error and "never replaced" in error and first.output["oci_digest"] in error
    assert platform.call("GET", f"/v1/releases/other/{name}/api/1").json()["oci_digest"] is None
    assert store.resolve(f"{name}/api", commit).digest == first.output["oci_digest"]


def test_a_render_error_names_the_project_resource_and_field(platform: Platform, tmp_path: Path) -> None:
    repository = repo()
    broken = deployment()
    broken["spec"]["replicas"] = "three"
    result = run_job(platform, tmp_path, LayoutStore(tmp_path / "oci"), repository, new_sha(),
                     resources=[broken])
    assert result.status is JobStatus.FAILED
    assert "project api" in (result.error or "")
    assert "Deployment/api" in (result.error or "")
    assert "replicas" in (result.error or "")
    assert platform.call("GET", f"/v1/releases/{repository}/api").json()["total"] == 0  # no number used


def test_an_unknown_artifact_reference_is_a_render_error(platform: Platform, tmp_path: Path) -> None:
    repository = repo()
    result = run_job(platform, tmp_path, LayoutStore(tmp_path / "oci"), repository, new_sha(),
                     resources=[deployment("@artifact(web).image")])
    assert result.status is JobStatus.FAILED
    assert "web" in (result.error or "") and "project api" in (result.error or "")


def test_a_primary_location_without_a_digest_is_a_clear_error(platform: Platform, tmp_path: Path) -> None:
    repository, commit = repo(), new_sha()
    body = payload(repository, commit)
    body["artifacts"][0]["published"][0]["digest"] = None
    result = run_job(platform, tmp_path, LayoutStore(tmp_path / "oci"), repository, commit,
                     artifacts=body["artifacts"])
    assert result.status is JobStatus.FAILED
    error = result.error or ""
    assert "project api" in error and "artifact 'api'" in error and "no digest" in error
    assert "reg.example/acme/api:1.2.0" in error
    assert platform.call("GET", f"/v1/releases/{repository}/api").json()["total"] == 0


def test_a_token_of_another_repository_is_refused(platform: Platform, tmp_path: Path) -> None:
    repository, commit = repo(), new_sha()
    store = LayoutStore(tmp_path / "oci")
    refused = run_job(platform, tmp_path, store, repository, commit, scoped_to=repo())
    assert refused.status is JobStatus.FAILED
    # the scope check answers for the run first: another repository's run is "does not exist"
    error = refused.error or ""
    assert "project api" in error
    assert "may act on repository" in error or "does not exist" in error
    assert platform.call("GET", f"/v1/releases/{repository}/api").json()["total"] == 0
    made = run_job(platform, tmp_path, store, repository, commit, scoped_to=repository)
    assert made.status is JobStatus.SUCCESS, made.error
    image = {"oci_uri": made.output["oci_uri"], "oci_digest": made.output["oci_digest"]}
    path = f"/v1/releases/{repository}/api/1/image"
    foreign = platform.key.mint("ci", roles=["releaser"], extra={"repository": repo()})
    answer = platform.call("PUT", path, json=image, headers={"Authorization": f"Bearer {foreign}"})
    assert answer.status_code == 403, answer.text
    own = platform.key.mint("ci", roles=["releaser"], extra={"repository": repository})
    assert platform.call("PUT", path, json=image, headers={"Authorization": f"Bearer {own}"}).status_code == 200


def test_an_invalid_payload_names_the_field(platform: Platform, tmp_path: Path) -> None:
    from forge_core.domain.errors import ConfigurationError

    job = Job(id="j", type="release", run_id=str(uuid.uuid4()), payload={"repository": "acme/x"})
    with pytest.raises(ConfigurationError, match=r"payload\.project"):
        ReleaseHandler().handle(job, platform.context(tmp_path, LayoutStore(tmp_path / "oci")))


@pytest.mark.parametrize(("change", "field"), [
    ({"commit": "ABC"}, "payload.commit"),
    ({"committed_at": "2026-11-30T09:15:00"}, "payload.committed_at"),
    ({"artifacts": "twice"}, "payload"),
])
def test_a_bad_payload_is_refused_naming_the_field(
    platform: Platform, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    from forge_core.domain.errors import ConfigurationError

    body = payload(repo(), new_sha())
    if change.get("artifacts") == "twice":
        change = {"artifacts": body["artifacts"] * 2}
    job = Job(id="j", type="release", run_id=str(uuid.uuid4()), payload={**body, **change})
    with pytest.raises(ConfigurationError) as caught:
        ReleaseHandler().handle(job, platform.context(tmp_path, LayoutStore(tmp_path / "oci")))
    assert caught.value.where == field
