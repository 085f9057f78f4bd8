"""Tracking images written and read back through the real stores: the embedded layout and the
docker-registry fixture (distribution 2.8, no referrers API), and checked with skopeo."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import EMPTY, EMPTY_DESCRIPTOR, Descriptor, Manifest
from forge_core.domain.tracking import (
    ARTIFACT_TYPE,
    DSSE_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    METADATA_MEDIA_TYPE,
    SBOM_MEDIA_TYPE,
    DsseEnvelope,
    MalformedTrackingImage,
    TrackingConflict,
    TrackingMetadata,
)
from forge_core.services.signing import Signer, Verifier
from forge_core.services.tracking import (
    attach_tracking_to_image,
    create_tracking_image,
    read_tracking_image,
)
from forge_core.testing.registry import RegistryServer

from .conftest import BINARY_DIGEST, COMMIT, RUN_ID, make_metadata

REPOSITORY = "monorepo/cli/acmectl"
TAG = f"sha-{COMMIT}"


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
    return result.stdout


@pytest.fixture
def registry(oci_registry: RegistryServer) -> RegistryStore:
    return RegistryStore(oci_registry.address)


@pytest.fixture(params=["layout", "registry"])
def store(request: pytest.FixtureRequest, layout_store: LayoutStore) -> LayoutStore | RegistryStore:
    if request.param == "layout":
        return layout_store
    value: RegistryStore = request.getfixturevalue("registry")
    return value


def _unique(metadata: TrackingMetadata, tmp_path: Path) -> TrackingMetadata:
    # The session's registry is shared: one project per test keeps repositories apart.
    project = "p" + str(abs(hash(tmp_path)))[:10]
    return metadata.model_copy(update={"project": project})


def test_created_image_reads_back_with_metadata_provenance_sbom_and_a_verified_signature(
    store: LayoutStore | RegistryStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    metadata = _unique(metadata, tmp_path)
    image = create_tracking_image(store, metadata, sbom, signer, ref="refs/tags/cli/v1.2.0")
    repository = f"monorepo/{metadata.project}/acmectl"

    assert image.reference.endswith(f"{repository}:{TAG}")
    record = read_tracking_image(store, repository, TAG, signer.verifier())

    assert record.digest == image.digest
    assert record.metadata == metadata
    assert record.metadata.published[0].digest == BINARY_DIGEST
    externals = record.provenance["predicate"]["buildDefinition"]["externalParameters"]
    assert externals["commit"] == COMMIT and externals["ref"] == "refs/tags/cli/v1.2.0"
    assert record.provenance["predicate"]["runDetails"]["metadata"]["invocationId"] == RUN_ID
    assert record.sbom.spec_version == "1.6" and record.sbom.files == 1
    assert record.signature is True and record.keyid == signer.keyid
    assert read_tracking_image(store, repository, image.digest, None).signature is None


def test_the_manifest_is_the_designed_oci_artifact(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer
) -> None:
    image = create_tracking_image(layout_store, metadata, sbom, signer)

    document = layout_store.fetch_manifest(REPOSITORY, TAG).document
    assert isinstance(document, Manifest)
    assert document.artifact_type == ARTIFACT_TYPE
    assert document.config == EMPTY_DESCRIPTOR and document.config.media_type == EMPTY
    assert [layer.media_type for layer in document.layers] == [METADATA_MEDIA_TYPE, SBOM_MEDIA_TYPE, DSSE_MEDIA_TYPE]
    assert [layer.annotations["org.catalyst-forge.layer.type"] for layer in document.layers if layer.annotations] == [
        "metadata",
        "sbom",
        "attestation",
    ]
    assert document.annotations is not None
    assert document.annotations["org.opencontainers.image.created"] == "2026-03-04T05:06:07Z"
    assert document.annotations["org.opencontainers.image.revision"] == COMMIT
    assert image.digest == layout_store.resolve(REPOSITORY, TAG).digest


def test_an_unsigned_image_carries_a_bare_statement_and_reads_as_not_verified(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer
) -> None:
    create_tracking_image(layout_store, metadata, sbom, None)

    document = layout_store.fetch_manifest(REPOSITORY, TAG).document
    assert isinstance(document, Manifest) and document.layers[2].media_type == IN_TOTO_MEDIA_TYPE
    record = read_tracking_image(layout_store, REPOSITORY, TAG, signer.verifier())
    assert record.signature is False and "not signed" in record.signature_note


def test_same_inputs_give_the_same_digest_and_pushing_again_is_a_no_op(
    store: LayoutStore | RegistryStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    metadata = _unique(metadata, tmp_path)
    first = create_tracking_image(store, metadata, sbom, signer)
    again = create_tracking_image(store, metadata, sbom, signer)

    assert again.digest == first.digest
    assert store.resolve(f"monorepo/{metadata.project}/acmectl", TAG).digest == first.digest


def test_a_tag_that_names_a_different_image_is_refused_naming_both(
    store: LayoutStore | RegistryStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    metadata = _unique(metadata, tmp_path)
    first = create_tracking_image(store, metadata, sbom, signer)
    moved = metadata.model_copy(update={"run_id": "run-other"})

    with pytest.raises(TrackingConflict) as caught:
        create_tracking_image(store, moved, sbom, signer)

    assert first.digest in caught.value.message and TAG in caught.value.message
    assert caught.value.where is not None and caught.value.where.endswith(f"acmectl:{TAG}")
    assert store.resolve(f"monorepo/{metadata.project}/acmectl", TAG).digest == first.digest


def test_skopeo_reads_and_copies_it_as_a_standard_image(
    layout_store: LayoutStore, oci_registry: RegistryServer, metadata: TrackingMetadata, sbom: bytes, tmp_path: Path
) -> None:
    signer = Signer(ed25519.Ed25519PrivateKey.generate())
    metadata = _unique(metadata, tmp_path)
    image = create_tracking_image(layout_store, metadata, sbom, signer)
    source = f"oci:{layout_store.location}/monorepo/{metadata.project}/acmectl:{TAG}"
    target = f"docker://{oci_registry.address}/monorepo/{metadata.project}/acmectl:{TAG}"

    raw = _run("skopeo", "inspect", "--raw", source)
    assert json.loads(raw)["artifactType"] == ARTIFACT_TYPE
    _run("skopeo", "copy", "--dest-tls-verify=false", source, target)

    registry = RegistryStore(oci_registry.address)
    record = read_tracking_image(registry, f"monorepo/{metadata.project}/acmectl", TAG, signer.verifier())
    assert record.digest == image.digest and record.signature is True
    copied = _run("skopeo", "inspect", "--raw", "--tls-verify=false", target).encode()
    assert "sha256:" + hashlib.sha256(copied).hexdigest() == image.digest


def _retagged(store: LayoutStore, manifest: Manifest, replace: dict[int, tuple[bytes, str]], tag: str) -> None:
    layers = list(manifest.layers)
    for position, (data, media_type) in replace.items():
        layers[position] = store.push_blob(REPOSITORY, data, media_type)
    store.push_manifest(REPOSITORY, manifest.model_copy(update={"layers": layers}), tags=[tag])


def test_a_tampered_payload_does_not_verify(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    image = create_tracking_image(layout_store, metadata, sbom, signer)
    envelope = DsseEnvelope.parse(image.blobs[image.manifest.layers[2].digest], where="test")
    statement = json.loads(envelope.payload_bytes())
    statement["predicate"]["runDetails"]["metadata"]["invocationId"] = "run-forged"
    forged = envelope.model_copy(update={"payload": base64.b64encode(json.dumps(statement).encode()).decode()})
    _retagged(layout_store, image.manifest, {2: (forged.to_json(), DSSE_MEDIA_TYPE)}, "forged")

    record = read_tracking_image(layout_store, REPOSITORY, "forged", signer.verifier())
    assert record.signature is False and "does not match" in record.signature_note


def test_another_key_does_not_verify(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer
) -> None:
    create_tracking_image(layout_store, metadata, sbom, signer)
    stranger = Verifier([ed25519.Ed25519PrivateKey.generate().public_key()])

    record = read_tracking_image(layout_store, REPOSITORY, TAG, stranger)
    assert record.signature is False and "not a trusted key" in record.signature_note


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("artifact_type", "artifactType 'application/vnd.example.other'"),
        ("missing_sbom", r"0 layers of type application/vnd\.cyclonedx\+json"),
        ("bad_json", "metadata layer does not validate"),
        ("bad_sbom", "bad JSON"),
        ("oversize", "over the limit"),
        ("other_subject", "is not the artifact's digest"),
    ],
)
def test_malformed_content_is_refused_naming_the_layer_and_reference(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, damage: str, message: str
) -> None:
    image = create_tracking_image(layout_store, metadata, sbom, signer)
    manifest = image.manifest
    if damage == "artifact_type":
        layout_store.push_manifest(
            REPOSITORY, manifest.model_copy(update={"artifact_type": "application/vnd.example.other"}), tags=["bad"]
        )
    elif damage == "missing_sbom":
        layout_store.push_manifest(
            REPOSITORY, manifest.model_copy(update={"layers": [manifest.layers[0], manifest.layers[2]]}), tags=["bad"]
        )
    elif damage == "bad_json":
        _retagged(layout_store, manifest, {0: (b'{"name": 1}', METADATA_MEDIA_TYPE)}, "bad")
    elif damage == "bad_sbom":
        _retagged(layout_store, manifest, {1: (b"{not json", SBOM_MEDIA_TYPE)}, "bad")
    elif damage == "oversize":
        _retagged(layout_store, manifest, {0: (b" " * (4 * 1024**2 + 1), METADATA_MEDIA_TYPE)}, "bad")
    else:
        other = make_metadata(digest="sha256:" + "9" * 64)
        _retagged(layout_store, manifest, {0: (other.to_json(), METADATA_MEDIA_TYPE)}, "bad")

    with pytest.raises(MalformedTrackingImage, match=message) as caught:
        read_tracking_image(layout_store, REPOSITORY, "bad", signer.verifier())
    assert caught.value.where is not None and f"{REPOSITORY}:bad" in caught.value.where
    if damage not in ("artifact_type", "missing_sbom"):
        assert " layer application/vnd." in caught.value.where


def test_a_container_tracking_image_is_listed_among_the_image_referrers_on_docker_registry(
    registry: RegistryStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    # A published image on the registry (no referrers API in distribution 2.8: the tag fallback).
    image_repository = f"acme/api-{abs(hash(tmp_path)) % 10**8}"
    config = registry.push_blob(
        image_repository, b'{"architecture":"amd64","os":"linux"}', "application/vnd.oci.image.config.v1+json"
    )
    published = registry.push_manifest(image_repository, Manifest(config=config, layers=[]), tags=["1.2.0"])
    metadata = _unique(
        metadata.model_copy(update={"name": "api", "type": "container", "digest": published.digest}), tmp_path
    )

    tracking = create_tracking_image(registry, metadata, sbom, signer)
    attached = attach_tracking_to_image(registry, image_repository, published, tracking)
    again = attach_tracking_to_image(registry, image_repository, published, tracking)

    referrers = registry.referrers(image_repository, published.digest, artifact_type=ARTIFACT_TYPE)
    assert [r.digest for r in referrers] == [attached.digest] and again.digest == attached.digest
    assert registry.resolve(image_repository, "sha256-" + published.digest.removeprefix("sha256:"))
    record = read_tracking_image(registry, image_repository, attached.digest, signer.verifier())
    assert record.subject is not None and record.subject.digest == published.digest
    assert record.signature is True and record.metadata == metadata
    assert isinstance(Descriptor.model_validate(referrers[0].model_dump()), Descriptor)

    # Another run at the same commit (no memory of the first: a new tracking image, other times)
    # finds it attached and adds no second referrer.
    rerun = create_tracking_image(
        registry, metadata.model_copy(update={"run_id": "another-run"}), sbom, signer, prefix="rerun"
    )
    assert rerun.digest != attached.digest
    found = attach_tracking_to_image(registry, image_repository, published, rerun)
    assert found.digest == attached.digest and found.blobs == {}
    referrers = registry.referrers(image_repository, published.digest, artifact_type=ARTIFACT_TYPE)
    assert [r.digest for r in referrers] == [attached.digest]


def test_a_subject_given_at_creation_lists_it_among_the_referrers_in_the_layout(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer
) -> None:
    config = layout_store.push_blob(
        REPOSITORY, b'{"architecture":"amd64","os":"linux"}', "application/vnd.oci.image.config.v1+json"
    )
    published = layout_store.push_manifest(REPOSITORY, Manifest(config=config, layers=[]), tags=["1.2.0"])

    image = create_tracking_image(layout_store, metadata, sbom, signer, subject=published)

    assert [r.digest for r in layout_store.referrers(REPOSITORY, published.digest)] == [image.digest]
    assert read_tracking_image(layout_store, REPOSITORY, TAG, signer.verifier()).subject == published


def test_a_registry_that_is_down_fails_naming_it_and_records_nothing(
    metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    from forge_core.domain.oci import OciUnavailable
    from forge_core.settings.oci import OciSettings
    from forge_core.testing.registry import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    down = RegistryStore(address, settings=OciSettings(attempts=2, backoff=0.05, max_backoff=0.1, timeout=2))

    with pytest.raises(OciUnavailable) as caught:
        create_tracking_image(down, metadata, sbom, signer)
    assert caught.value.registry == address


def test_refused_credentials_fail_without_printing_the_password(
    oci_registry_basic: RegistryServer, metadata: TrackingMetadata, sbom: bytes, signer: Signer, tmp_path: Path
) -> None:
    metadata = _unique(metadata, tmp_path)
    from forge_core.domain.oci import OciAuthError, RegistryCredentials
    from forge_core.testing.registry import USER

    refused = RegistryStore(oci_registry_basic.address, credentials=RegistryCredentials(USER, "wrong-password-123"))
    with pytest.raises(OciAuthError) as caught:
        create_tracking_image(refused, metadata, sbom, signer)
    assert "wrong-password-123" not in str(caught.value) and oci_registry_basic.address in str(caught.value)

    assert oci_registry_basic.password is not None
    allowed = RegistryStore(
        oci_registry_basic.address, credentials=RegistryCredentials(USER, oci_registry_basic.password)
    )
    image = create_tracking_image(allowed, metadata, sbom, signer)
    repository = f"monorepo/{metadata.project}/acmectl"
    assert read_tracking_image(allowed, repository, TAG, signer.verifier()).digest == image.digest


def test_a_python_artifact_reads_back_with_its_dependencies_in_the_sbom_summary(
    layout_store: LayoutStore, signer: Signer, tmp_path: Path
) -> None:
    from forge_core.domain.models import ProducedArtifact
    from forge_core.services.sbom import artifact_sbom

    from .test_sbom import _wheel

    wheel = _wheel(tmp_path)
    digest = "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()
    artifact = ProducedArtifact(name="greeting", type="python", project="greeting", commit=COMMIT, files=(wheel,))
    metadata = make_metadata(name="greeting", type="python", project="greeting", producer="python", digest=digest)

    create_tracking_image(
        layout_store, metadata, artifact_sbom(artifact, digest=digest, timestamp=metadata.produced_at), signer
    )
    record = read_tracking_image(layout_store, "monorepo/greeting/greeting", TAG, signer.verifier())

    assert record.sbom.root == "greeting@1.2.0"
    assert record.sbom.packages == ("click", "requests", "rich")
    assert record.signature is True


def test_the_signature_covers_the_metadata_and_sbom_layers(
    layout_store: LayoutStore, metadata: TrackingMetadata, sbom: bytes, signer: Signer
) -> None:
    from forge_core.domain.models import PublishedLocation

    image = create_tracking_image(layout_store, metadata, sbom, signer)
    statement = json.loads(DsseEnvelope.parse(image.blobs[image.manifest.layers[2].digest], where="t").payload_bytes())
    byproducts = {b["mediaType"]: b["digest"]["sha256"] for b in statement["predicate"]["runDetails"]["byproducts"]}
    assert byproducts == {
        METADATA_MEDIA_TYPE: image.manifest.layers[0].digest.removeprefix("sha256:"),
        SBOM_MEDIA_TYPE: image.manifest.layers[1].digest.removeprefix("sha256:"),
    }
    evil = PublishedLocation(publisher="releases", type="s3", uri="s3://evil/acmectl", digest=BINARY_DIGEST)
    changed = metadata.model_copy(update={"published": (evil,)})
    _retagged(layout_store, image.manifest, {0: (changed.to_json(), METADATA_MEDIA_TYPE)}, "moved-metadata")
    _retagged(layout_store, image.manifest, {1: (sbom.replace(b"acmectl", b"acmectX"), SBOM_MEDIA_TYPE)}, "moved-sbom")

    for tag, layer in (("moved-metadata", METADATA_MEDIA_TYPE), ("moved-sbom", SBOM_MEDIA_TYPE)):
        record = read_tracking_image(layout_store, REPOSITORY, tag, signer.verifier())
        assert record.signature is False
        assert f"the {layer} layer is not the one the provenance names" in record.signature_note
