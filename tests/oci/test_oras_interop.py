"""An independent client reads what the registry store writes: oras-py pulls a tracking image and the
referrers fallback index from the real registry, and the store reads what oras-py pushed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import EMPTY, EMPTY_JSON, INDEX, Manifest, fallback_tag
from forge_core.testing.registry import RegistryServer

TRACKING = "application/vnd.forge.artifact.tracking.v1"
METADATA = "application/vnd.forge.artifact.metadata.v1+json"


def test_oras_py_pulls_a_tracking_image_and_its_fallback_index(
    registry_store: RegistryStore, oci_registry: RegistryServer, repository: str, tmp_path: Path
) -> None:
    import oras.provider  # ~1-4 s to import: only this test pays it

    registry_store.push_blob(repository, EMPTY_JSON, EMPTY)
    subject = registry_store.push_manifest(repository, Manifest(artifact_type="x/subject"), tags=["image"])
    metadata = registry_store.push_blob(repository, b'{"name":"api"}', METADATA)
    tracking = registry_store.attach_referrer(
        repository, Manifest(artifact_type=TRACKING, layers=[metadata], subject=subject), tags=["sha-" + "1" * 40]
    )

    oras_registry = oras.provider.Registry(hostname=oci_registry.address, insecure=True)
    manifest = oras_registry.get_manifest(f"{oci_registry.address}/{repository}:sha-{'1' * 40}")
    fallback = oras_registry.get_manifest(
        f"{oci_registry.address}/{repository}:{fallback_tag(subject.digest)}", allowed_media_type=[INDEX]
    )
    out = tmp_path / "metadata.json"
    oras_registry.download_blob(f"{oci_registry.address}/{repository}", metadata.digest, str(out))

    assert manifest["artifactType"] == TRACKING
    assert manifest["subject"]["digest"] == subject.digest
    assert [m["digest"] for m in fallback["manifests"]] == [tracking.digest]
    assert json.loads(out.read_text()) == {"name": "api"}


def test_the_store_reads_what_oras_py_pushed(
    registry_store: RegistryStore,
    oci_registry: RegistryServer,
    repository: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import oras.client

    monkeypatch.chdir(tmp_path)  # oras-py pushes files below the working directory only
    layer_file = tmp_path / "notes.txt"
    layer_file.write_text("pushed by oras-py\n")
    client = oras.client.OrasClient(hostname=oci_registry.address, insecure=True)
    client.push(f"{oci_registry.address}/{repository}:by-oras", files=["notes.txt:text/vnd.forge.notes"])

    fetched = registry_store.fetch_manifest(repository, "by-oras")
    assert isinstance(fetched.document, Manifest)
    (layer,) = fetched.document.layers
    assert layer.media_type == "text/vnd.forge.notes"
    assert registry_store.fetch_blob(repository, layer, tmp_path / "back").read_text() == "pushed by oras-py\n"
