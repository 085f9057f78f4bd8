"""The OCI store port's behaviour, each test run on the real registry and on a layout folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import (
    EMPTY,
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    INDEX,
    MANIFEST,
    REF_NAME,
    Descriptor,
    FetchedManifest,
    Index,
    Manifest,
    OciNotFound,
    OciReferenceError,
    OciRejected,
    OciTooLarge,
    Platform,
    fallback_tag,
    parse_manifest,
    sha256_digest,
)
from forge_core.ports.oci import layer

Store = RegistryStore | LayoutStore
TRACKING = "application/vnd.forge.artifact.tracking.v1"
METADATA = "application/vnd.forge.artifact.metadata.v1+json"
SBOM = "application/vnd.cyclonedx+json"
PROVENANCE = "application/vnd.in-toto+json"


def _image(store: Store, repository: str, payload: bytes, *, tag: str | None = None) -> Descriptor:
    """A small artifact manifest with one layer, pushed (tagged when asked)."""
    store.push_blob(repository, EMPTY_JSON, EMPTY)
    content = store.push_blob(repository, payload, "application/vnd.forge.test.v1")
    return store.push_manifest(
        repository, Manifest(artifact_type="application/vnd.forge.test", layers=[content]), tags=[tag] if tag else []
    )


def _tracking(store: Store, repository: str, subject: Descriptor, name: str) -> Manifest:
    store.push_blob(repository, EMPTY_JSON, EMPTY)
    layers = [
        store.push_blob(repository, json.dumps({"name": name}).encode(), METADATA),
        store.push_blob(repository, json.dumps({"bomFormat": "CycloneDX", "name": name}).encode(), SBOM),
        store.push_blob(repository, json.dumps({"_type": "statement", "name": name}).encode(), PROVENANCE),
    ]
    return Manifest(artifact_type=TRACKING, layers=layers, subject=subject, annotations={"forge.artifact": name})


def test_a_blob_round_trips_from_bytes_and_from_a_file(store: Store, repository: str, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(b"file content " * 1000)
    from_file = store.push_blob(repository, source, "application/octet-stream")
    from_bytes = store.push_blob(repository, b"some bytes", "text/plain", annotations={"k": "v"})

    assert from_file.digest == sha256_digest(source.read_bytes())
    assert from_file.size == 13000
    assert from_bytes.annotations == {"k": "v"}
    assert store.blob_exists(repository, from_file.digest)
    assert not store.blob_exists(repository, sha256_digest(b"never pushed"))
    assert store.fetch_blob(repository, from_file, tmp_path / "out" / "a").read_bytes() == source.read_bytes()
    assert store.fetch_blob(repository, from_bytes, tmp_path / "b").read_bytes() == b"some bytes"


def test_a_tag_resolves_to_the_pushed_digest_and_moves_when_retagged(store: Store, repository: str) -> None:
    first = _image(store, repository, b"one", tag="latest")
    assert store.resolve(repository, "latest") == first
    second = _image(store, repository, b"two", tag="latest")

    assert second.digest != first.digest
    assert store.resolve(repository, "latest").digest == second.digest
    fetched = store.fetch_manifest(repository, "latest")
    assert fetched.descriptor == second
    assert sha256_digest(fetched.raw) == second.digest
    assert store.fetch_manifest(repository, first.digest).descriptor.digest == first.digest


def test_the_same_inputs_give_the_same_manifest_digest(store: Store, repository: str) -> None:
    assert _image(store, repository, b"same", tag="a") == _image(store, repository, b"same", tag="b")
    assert store.resolve(repository, "a") == store.resolve(repository, "b")


def test_a_tracking_image_is_listed_among_its_subjects_referrers(store: Store, repository: str, tmp_path: Path) -> None:
    subject = _image(store, repository, b"the published image", tag="1.2.0")
    tracking = _tracking(store, repository, subject, "api")

    pushed = store.attach_referrer(repository, tracking, tags=["sha-" + "a" * 40])
    listed = store.referrers(repository, subject.digest)

    assert [d.digest for d in listed] == [pushed.digest]
    assert listed[0].artifact_type == TRACKING
    assert listed[0].annotations == {"forge.artifact": "api"}
    assert store.referrers(repository, subject.digest, artifact_type="application/other") == []
    assert store.resolve(repository, "sha-" + "a" * 40) == pushed
    fetched = store.fetch_manifest(repository, "sha-" + "a" * 40)
    assert isinstance(fetched.document, Manifest)
    assert fetched.document.artifact_type == TRACKING
    assert fetched.document.config == EMPTY_DESCRIPTOR
    assert fetched.document.subject == subject
    sbom = layer(store, repository, fetched, SBOM, tmp_path / "sbom.json")
    assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"
    # The fallback is the tag schema of distribution-spec 1.1: an index at sha256-<hex>.
    fallback = store.fetch_manifest(repository, fallback_tag(subject.digest))
    assert isinstance(fallback.document, Index)
    assert [d.digest for d in fallback.document.manifests] == [pushed.digest]


def test_attaching_the_same_referrer_twice_lists_it_once(store: Store, repository: str) -> None:
    subject = _image(store, repository, b"subject")
    tracking = _tracking(store, repository, subject, "once")
    store.attach_referrer(repository, tracking)
    store.attach_referrer(repository, tracking)
    assert len(store.referrers(repository, subject.digest)) == 1


def test_concurrent_writers_of_one_process_each_land_in_the_referrers_fallback(store: Store, repository: str) -> None:
    subject = _image(store, repository, b"shared subject")
    manifests = [_tracking(store, repository, subject, f"artifact-{i}") for i in range(4)]
    errors: list[BaseException] = []

    def attach(manifest: Manifest) -> None:
        try:
            store.attach_referrer(repository, manifest)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=(m,)) for m in manifests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    names = {(d.annotations or {})["forge.artifact"] for d in store.referrers(repository, subject.digest)}
    assert names == {f"artifact-{i}" for i in range(4)}


def test_a_fetched_manifest_is_pushed_byte_for_byte_keeping_its_digest(store: Store, repository: str) -> None:
    """A copy of a manifest another tool wrote (pretty-printed, no mediaType) keeps its digest."""
    config = store.push_blob(repository, EMPTY_JSON, EMPTY)
    raw = json.dumps(
        {"schemaVersion": 2, "config": config.model_dump(by_alias=True, exclude_none=True), "layers": []}, indent=2
    ).encode()
    fetched = FetchedManifest(Descriptor.of(raw, MANIFEST), raw, parse_manifest(raw, None, registry="", reference=""))
    pushed = store.push_manifest(repository, fetched, tags=["copied"])
    assert pushed.digest == sha256_digest(raw)
    assert store.fetch_manifest(repository, "copied").raw == raw


def test_an_image_index_names_its_platform_manifests(store: Store, repository: str) -> None:
    amd = _image(store, repository, b"amd64")
    arm = _image(store, repository, b"arm64")
    index = Index(
        manifests=[
            amd.model_copy(update={"platform": Platform(architecture="amd64", os="linux")}),
            arm.model_copy(update={"platform": Platform(architecture="arm64", os="linux", variant="v8")}),
        ]
    )
    pushed = store.push_manifest(repository, index, tags=["multi"])
    fetched = store.fetch_manifest(repository, "multi")

    assert pushed.media_type == INDEX
    assert isinstance(fetched.document, Index)
    assert [(m.digest, m.platform and m.platform.architecture) for m in fetched.document.manifests] == [
        (amd.digest, "amd64"),
        (arm.digest, "arm64"),
    ]


def test_a_manifest_naming_a_missing_blob_is_refused_and_not_tagged(store: Store, repository: str) -> None:
    store.push_blob(repository, EMPTY_JSON, EMPTY)
    missing = Descriptor.of(b"never uploaded", "application/vnd.forge.test.v1")
    with pytest.raises(OciRejected) as caught:
        store.push_manifest(repository, Manifest(artifact_type="x/y", layers=[missing]), tags=["broken"])
    assert missing.digest in str(caught.value) or "MANIFEST_BLOB_UNKNOWN" in str(caught.value)
    assert caught.value.registry == store.location
    with pytest.raises(OciNotFound):
        store.resolve(repository, "broken")


def test_unknown_tags_manifests_and_blobs_are_not_found(store: Store, repository: str, tmp_path: Path) -> None:
    _image(store, repository, b"exists", tag="here")
    with pytest.raises(OciNotFound) as caught:
        store.resolve(repository, "nowhere")
    assert caught.value.reference == f"{repository}:nowhere"
    with pytest.raises(OciNotFound):
        store.fetch_manifest(repository, sha256_digest(b"no manifest"))
    with pytest.raises(OciNotFound):
        store.fetch_blob(repository, Descriptor.of(b"no blob", "x/y"), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert store.referrers(repository, sha256_digest(b"nothing refers")) == []


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "sha256:" + "A" * 64])
def test_a_bad_digest_is_a_clear_error(store: Store, repository: str, digest: str) -> None:
    with pytest.raises(OciReferenceError, match="bad digest"):
        store.fetch_manifest(repository, digest)
    with pytest.raises(OciReferenceError, match="bad digest"):
        store.blob_exists(repository, digest)
    with pytest.raises(OciReferenceError, match="bad digest"):
        store.referrers(repository, digest)


def test_a_blob_over_the_size_limit_is_refused_before_download(store: Store, repository: str, tmp_path: Path) -> None:
    blob = store.push_blob(repository, b"x" * 1000, "application/octet-stream")
    with pytest.raises(OciTooLarge, match="over the limit of 999"):
        store.fetch_blob(repository, blob, tmp_path / "big", max_size=999)
    assert not (tmp_path / "big").exists()


def test_a_referrer_without_subject_is_refused(store: Store, repository: str) -> None:
    with pytest.raises(OciReferenceError, match="needs a subject"):
        store.attach_referrer(repository, Manifest(artifact_type=TRACKING))


def test_manifests_are_written_as_oci_1_1_with_the_empty_config(store: Store, repository: str) -> None:
    pushed = _image(store, repository, b"shape")
    raw = json.loads(store.fetch_manifest(repository, pushed.digest).raw)
    assert raw["schemaVersion"] == 2
    assert raw["mediaType"] == MANIFEST
    assert raw["artifactType"] == "application/vnd.forge.test"
    assert raw["config"] == {"mediaType": EMPTY, "digest": sha256_digest(b"{}"), "size": 2}
    assert REF_NAME not in json.dumps(raw)
