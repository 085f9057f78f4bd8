"""The Release OCI image: packed reproducibly, pushed once, read back verified (layout store and the
real docker-registry), and accepted by skopeo."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.adapters.oci.release_image import push_release_image, read_release_image
from forge_core.domain.oci import MANIFEST, Manifest
from forge_core.domain.release_image import (
    ARTIFACT_TYPE,
    METADATA,
    RESOURCES,
    PrimaryLocation,
    ReleaseArtifactRef,
    ReleaseFacts,
    ReleaseImageConflict,
    ReleaseImageError,
    ReleaseTriggerInfo,
    TrackingRef,
    resource_files,
)
from forge_core.domain.resources import LayerFile, parse_resources
from forge_core.testing.registry import RegistryServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "a" * 64
MANIFESTS = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
     "spec": {"template": {"spec": {"containers": [{"name": "api", "image": f"reg/api:1@{DIGEST}"}]}}}},
]


def facts(number: int = 1, commit: str = COMMIT, aliases: tuple[str, ...] = ("1", "main-1"),
          project: str = "api") -> ReleaseFacts:
    return ReleaseFacts(
        repository="acme/monorepo", project=project, commit=commit, release_number=number, aliases=aliases,
        trigger=ReleaseTriggerInfo(type="branch_push", branch="main"),
        artifacts=(ReleaseArtifactRef(
            name="api", type="container",
            tracking=TrackingRef(reference=f"reg/monorepo/api/api:sha-{commit}", digest=DIGEST),
            primary=PrimaryLocation(uri="reg/api:1", digest=DIGEST)),),
        created=datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC),
    )


def test_round_trip_in_the_layout_store(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    files = resource_files(MANIFESTS)
    assert list(files) == ["0001-service-api.yaml", "0002-deployment-api.yaml"]
    pushed = push_release_image(store, facts(), files)
    assert pushed.pushed
    assert pushed.reference == f"oci-layout:{tmp_path / 'oci' / 'monorepo' / 'api'}:{COMMIT}"
    image = read_release_image(store, f"reg.example:5000/monorepo/api:{COMMIT}")
    assert image.digest == pushed.digest
    assert image.files == files
    assert image.metadata.release_number == 1
    assert image.metadata.aliases == ("1", "main-1")
    assert image.metadata.artifacts[0].tracking.digest == DIGEST
    assert image.metadata.repository == "acme/monorepo"
    kinds = [r.kind for r in parse_resources(LayerFile(name=k, data=v) for k, v in image.files.items())]
    assert kinds == ["Deployment", "Service"]
    fetched = store.fetch_manifest("monorepo/api", COMMIT)
    manifest = fetched.document
    assert isinstance(manifest, Manifest)
    assert manifest.media_type == MANIFEST
    assert manifest.artifact_type == ARTIFACT_TYPE
    assert [layer.media_type for layer in manifest.layers] == [METADATA, RESOURCES]
    assert image.metadata.resources_digest == manifest.layers[1].digest
    assert manifest.annotations is not None
    assert manifest.annotations["org.opencontainers.image.created"] == "2026-11-30T12:00:05Z"
    # the reader takes the image by digest and by the layout reference the pusher returned
    assert read_release_image(store, f"x.example/monorepo/api@{pushed.digest}").digest == pushed.digest


def test_same_inputs_same_digest_in_a_fresh_store_and_no_second_push(tmp_path: Path) -> None:
    files = resource_files(MANIFESTS)
    first = push_release_image(LayoutStore(tmp_path / "a"), facts(), files)
    store = LayoutStore(tmp_path / "b")
    second = push_release_image(store, facts(), files)
    assert second.digest == first.digest
    again = push_release_image(store, facts(), files)
    assert (again.digest, again.pushed) == (first.digest, False)


def test_a_tag_holding_another_image_is_refused(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    files = resource_files(MANIFESTS)
    first = push_release_image(store, facts(), files)
    with pytest.raises(ReleaseImageConflict) as caught:
        push_release_image(store, facts(number=2), files)
    assert first.digest in str(caught.value) and "api" in str(caught.value)
    assert store.resolve("monorepo/api", COMMIT).digest == first.digest  # untouched


def test_the_sha_prefixed_tag_is_read_too(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    pushed = push_release_image(store, facts(), resource_files(MANIFESTS))
    fetched = store.fetch_manifest("monorepo/api", pushed.digest)
    store.push_manifest("monorepo/api", fetched, tags=[f"sha-{COMMIT}"])
    other = "f" * 40
    # a sha- tag alone (as the companion documents write it) is found from the plain commit tag
    store2 = LayoutStore(tmp_path / "two")
    assert isinstance(fetched.document, Manifest)
    for layer in [fetched.document.config, *fetched.document.layers]:
        store.fetch_blob("monorepo/api", layer, tmp_path / layer.digest)
        store2.push_blob("monorepo/api", (tmp_path / layer.digest).read_bytes(), layer.media_type)
    store2.push_manifest("monorepo/api", fetched, tags=[f"sha-{COMMIT}"])
    assert read_release_image(store2, f"r.example/monorepo/api:{COMMIT}").digest == pushed.digest
    store2.push_manifest("monorepo/api", fetched, tags=[other])  # a release's image under another commit
    with pytest.raises(ReleaseImageError, match="commit"):
        read_release_image(store2, f"r.example/monorepo/api:{other}")


def test_an_image_of_another_type_is_refused(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    pushed = push_release_image(store, facts(), resource_files(MANIFESTS))
    manifest = store.fetch_manifest("monorepo/api", pushed.digest).document
    assert isinstance(manifest, Manifest)
    other = manifest.model_copy(update={"artifact_type": "application/vnd.example"})
    store.push_manifest("monorepo/api", other, tags=["other"])
    with pytest.raises(ReleaseImageError, match="artifactType"):
        read_release_image(store, "r.example/monorepo/api:other")


def test_skopeo_inspects_the_image_in_a_registry(oci_registry: RegistryServer) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    with RegistryStore(oci_registry.address) as store:
        pushed = push_release_image(store, facts(project=project), resource_files(MANIFESTS))
        assert pushed.reference == f"{oci_registry.address}/monorepo/{project}:{COMMIT}"
        image = read_release_image(store, pushed.reference)
        assert image.digest == pushed.digest
        assert image.files == resource_files(MANIFESTS)
        assert not push_release_image(store, facts(project=project), resource_files(MANIFESTS)).pushed
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pushed.reference}"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    document = json.loads(raw)
    assert document["artifactType"] == ARTIFACT_TYPE
    assert [layer["mediaType"] for layer in document["layers"]] == [METADATA, RESOURCES]
    assert document["annotations"]["org.opencontainers.image.revision"] == COMMIT


def test_the_release_store_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forge_core.adapters.oci.release_image import release_store
    from forge_core.domain.errors import ConfigurationError
    from forge_core.settings import load_settings

    settings = load_settings(state_dir=str(tmp_path))
    embedded = release_store(settings.release, settings.oci)
    assert isinstance(embedded, LayoutStore) and embedded.location == str(tmp_path / "oci")
    monkeypatch.setenv("FORGE_RELEASE__REGISTRY", "127.0.0.1:5999")
    remote = release_store(load_settings().release, settings.oci)
    assert isinstance(remote, RegistryStore) and remote.location == "127.0.0.1:5999"
    monkeypatch.setenv("FORGE_RELEASE__REGISTRY", "https://reg.example/ns")
    with pytest.raises(ConfigurationError, match="FORGE_RELEASE__REGISTRY"):
        load_settings()
