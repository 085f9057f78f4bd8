"""The image-layout adapter: what it writes is a standard OCI layout (skopeo and umoci read it, and a
copy to the real registry keeps every digest), written atomically under a lock."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from forge_core.adapters.oci import embedded_store, open_store
from forge_core.adapters.oci.archive import write_tar_gz
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import (
    EMPTY,
    EMPTY_JSON,
    IMAGE_CONFIG,
    LAYER_TAR_GZIP,
    REF_NAME,
    Descriptor,
    Manifest,
    OciDigestMismatch,
    OciReferenceError,
    parse_reference,
)
from forge_core.settings import Settings
from forge_core.testing.registry import RegistryServer


def _container_image(store: LayoutStore, repository: str, tmp_path: Path, tag: str) -> Descriptor:
    """A real (runnable-shaped) image: one gzip layer and an image config naming its diff id."""
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    archive = write_tar_gz(tmp_path / "layer.tar.gz", {"etc/greeting": b"hello\n", "usr/bin/tool": tool})
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(archive.read_bytes())).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    layer = store.push_blob(repository, archive, LAYER_TAR_GZIP)
    config_descriptor = store.push_blob(repository, config, IMAGE_CONFIG)
    return store.push_manifest(repository, Manifest(config=config_descriptor, layers=[layer]), tags=[tag])


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
    return result.stdout


def test_the_layout_is_standard_on_disk(layout_store: LayoutStore, tmp_path: Path) -> None:
    pushed = _container_image(layout_store, "monorepo/api", tmp_path, "1.0.0")
    folder = Path(layout_store.location) / "monorepo" / "api"

    assert json.loads((folder / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((folder / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["manifests"] == [
        {
            "mediaType": pushed.media_type,
            "digest": pushed.digest,
            "size": pushed.size,
            "annotations": {REF_NAME: "1.0.0"},
        }
    ]
    blob = folder / "blobs" / "sha256" / pushed.digest.removeprefix("sha256:")
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == pushed.digest.removeprefix("sha256:")
    assert not list(folder.rglob(".*"))  # no temporary or lock files inside the layout


def test_umoci_unpacks_what_the_layout_store_writes(layout_store: LayoutStore, tmp_path: Path) -> None:
    _container_image(layout_store, "api", tmp_path, "v1")
    layout = f"{layout_store.location}/api"
    bundle = tmp_path / "bundle"

    _run("umoci", "stat", "--image", f"{layout}:v1")
    _run("umoci", "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle))

    assert (bundle / "rootfs" / "etc" / "greeting").read_text() == "hello\n"
    assert (bundle / "rootfs" / "usr" / "bin" / "tool").stat().st_mode & 0o777 == 0o755


def test_skopeo_copies_the_layout_to_the_registry_keeping_the_digest(
    layout_store: LayoutStore, oci_registry: RegistryServer, repository: str, tmp_path: Path
) -> None:
    pushed = _container_image(layout_store, "api", tmp_path, "v1")
    target = f"docker://{oci_registry.address}/{repository}:v1"

    _run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout_store.location}/api:v1", target)

    with RegistryStore(oci_registry.address) as registry:
        assert registry.resolve(repository, "v1").digest == pushed.digest
    raw = _run("skopeo", "inspect", "--raw", "--tls-verify=false", target)
    assert hashlib.sha256(raw.encode()).hexdigest() == pushed.digest.removeprefix("sha256:")


def test_an_artifact_with_subject_copies_through_skopeo_both_ways(
    layout_store: LayoutStore, oci_registry: RegistryServer, repository: str, tmp_path: Path
) -> None:
    subject = _container_image(layout_store, "api", tmp_path, "v1")
    layout_store.push_blob("api", EMPTY_JSON, EMPTY)
    metadata = layout_store.push_blob("api", b'{"name":"api"}', "application/vnd.forge.artifact.metadata.v1+json")
    tracking = layout_store.attach_referrer(
        "api",
        Manifest(artifact_type="application/vnd.forge.artifact.tracking.v1", layers=[metadata], subject=subject),
        tags=["sha-" + "0" * 40],
    )

    _run(
        "skopeo", "copy", "--dest-tls-verify=false",
        f"oci:{layout_store.location}/api:sha-{'0' * 40}", f"docker://{oci_registry.address}/{repository}:t",
    )  # fmt: skip
    (tmp_path / "back").mkdir()
    _run(
        "skopeo", "copy", "--src-tls-verify=false",
        f"docker://{oci_registry.address}/{repository}:t", f"oci:{tmp_path}/back/api:t",
    )  # fmt: skip

    back = LayoutStore(tmp_path / "back")
    assert back.resolve("api", "t").digest == tracking.digest
    document = back.fetch_manifest("api", "t").document
    assert isinstance(document, Manifest)
    assert document.subject == subject
    assert document.artifact_type == "application/vnd.forge.artifact.tracking.v1"


def test_a_crashed_index_write_leaves_the_previous_index(
    layout_store: LayoutStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _container_image(layout_store, "api", tmp_path, "stable")
    index_file = Path(layout_store.location) / "api" / "index.json"
    before = index_file.read_bytes()
    layout_store.push_blob("api", EMPTY_JSON, EMPTY)
    real_replace = os.replace

    def crash_on_index(source: str, target: str) -> None:
        if Path(target).name == "index.json":
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_index)
    with pytest.raises(OSError, match="disk full"):
        layout_store.push_manifest("api", Manifest(artifact_type="x/y"), tags=["stable"])
    monkeypatch.undo()

    assert index_file.read_bytes() == before
    assert layout_store.resolve("api", "stable") == first
    assert not [p for p in index_file.parent.iterdir() if p.name.startswith(".")]


def test_repository_paths_cannot_escape_the_root(layout_store: LayoutStore) -> None:
    for bad in ["../outside", "a/../../b", "/absolute", "", "a//b"]:
        with pytest.raises(OciReferenceError, match="bad repository name"):
            layout_store.push_blob(bad, b"x", "text/plain")


def test_the_embedded_store_lives_under_the_state_directory(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    store = embedded_store(settings.oci)
    store.push_blob("monorepo/api/container", b"x", "text/plain")
    assert (tmp_path / "state" / "oci" / "monorepo" / "api" / "container" / "oci-layout").is_file()


def test_a_layout_reference_opens_the_layout_store(tmp_path: Path) -> None:
    reference = parse_reference(f"oci-layout:{tmp_path}/images/api:v1")
    store = open_store(reference)
    assert isinstance(store, LayoutStore)
    store.push_blob(reference.repository, b"x", "text/plain")
    assert (tmp_path / "images" / "api" / "oci-layout").is_file()


def test_a_tampered_blob_in_the_layout_is_refused_on_read(layout_store: LayoutStore, tmp_path: Path) -> None:
    blob = layout_store.push_blob("api", b"genuine content", "text/plain")
    stored = Path(layout_store.location) / "api" / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")
    stored.write_bytes(b"tampered value!")
    with pytest.raises(OciDigestMismatch):
        layout_store.fetch_blob("api", blob, tmp_path / "out" / "blob")
    assert list((tmp_path / "out").iterdir()) == []


def test_layout_blob_pushes_are_skipped_or_mounted_from_a_sibling(layout_store: LayoutStore, tmp_path: Path) -> None:
    source = tmp_path / "layer"
    source.write_bytes(b"layer bytes" * 100)
    pushed = layout_store.push_blob("a", source, "application/octet-stream")
    mounted = layout_store.push_blob("b", source, "application/octet-stream", mount_from=["a"])
    root = Path(layout_store.location)
    name = pushed.digest.removeprefix("sha256:")
    assert mounted == pushed
    assert (root / "b/blobs/sha256" / name).stat().st_ino == (root / "a/blobs/sha256" / name).stat().st_ino
