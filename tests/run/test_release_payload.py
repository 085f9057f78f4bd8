"""What the release stage hands the release job from a run's artifact records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forge_core.cli.stages import StageFailed, artifact_results
from forge_core.services import schemas as s

DIGEST = "sha256:" + "a" * 64
PUSHED = "sha256:" + "b" * 64


def record(*targets: s.ArtifactTarget, primary: str | None = None, status: str = "success") -> s.ArtifactRecord:
    return s.ArtifactRecord(
        project="api", artifact="image", type="container", status=s.ArtifactStatus(status), digest=DIGEST,
        tracking_oci_uri="oci-layout:/state/oci/acme/api/image:sha-x", tracking_oci_digest="sha256:" + "c" * 64,
        primary_published_uri=primary, targets=list(targets), updated_at=datetime.now(UTC),
    )


def target(name: str, outcome: str, uri: str | None, digest: str | None = None) -> s.ArtifactTarget:
    return s.ArtifactTarget(publisher=name, type="docker", outcome=s.TargetOutcome(outcome), uri=uri, digest=digest)


def test_the_primary_location_comes_first_and_targets_without_a_location_are_left_out() -> None:
    (result,) = artifact_results([record(
        target("mirror", "published", "mirror.test/api:1", PUSHED),
        target("shelf", "not_planned", None),
        target("main", "published", "main.test/api:1", PUSHED),
        primary="main.test/api:1",
    )], "api")
    assert [(p.publisher, p.uri, p.digest) for p in result.published] == [
        ("main", "main.test/api:1", PUSHED), ("mirror", "mirror.test/api:1", PUSHED)]
    assert result.tracking == "oci-layout:/state/oci/acme/api/image:sha-x"


def test_a_planned_location_without_a_digest_is_pinned_by_the_artifacts_a_published_one_never_is() -> None:
    (planned,) = artifact_results([record(target("bucket", "planned", "s3://b/api.tgz"))], "api")
    assert planned.primary.digest == DIGEST
    (published,) = artifact_results([record(target("bucket", "published", "s3://b/api.tgz"))], "api")
    assert published.primary.digest is None  # the release job refuses it, naming the location


def test_an_artifact_with_nowhere_to_go_or_that_failed_is_refused_naming_it() -> None:
    with pytest.raises(StageFailed, match="artifact image has no published or planned location"):
        artifact_results([record(target("shelf", "not_planned", None))], "api")
    with pytest.raises(StageFailed, match=r"artifact image has no tracking image \(failed"):
        artifact_results([record(target("main", "failed", None), status="failed")], "api")
    assert artifact_results([record(target("main", "planned", "x/api:1"))], "web") == ()
