"""CycloneDX 1.6 SBOMs: a wheel's real dependencies, a container's files and packages, a binary's
files; valid against the CycloneDX 1.6 JSON schema, and the same bytes for the same inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from forge_core.adapters.oci.archive import write_tar_gz
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.domain.models import ProducedArtifact
from forge_core.domain.oci import IMAGE_CONFIG, INDEX, LAYER_TAR_GZIP, MANIFEST, Descriptor, Index, Manifest, Platform
from forge_core.domain.tracking import TrackingError
from forge_core.services.sbom import ImageSource, artifact_sbom, container_sbom, python_sbom, summarise_sbom

from .conftest import BINARY_DIGEST, COMMIT, PRODUCED

WHEEL_DIGEST = "sha256:" + "1" * 64
IMAGE_DIGEST = "sha256:" + "2" * 64

DPKG_STATUS = b"""Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libssl3
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

Package: removed-tool
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""

APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64

C:Q1def=
P:busybox
V:1.36.1-r15
A:x86_64
"""

DIST_INFO = b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\n"


def _validate(sbom: bytes) -> dict[str, object]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.decode())
    assert error is None, str(error).splitlines()[0]
    data: dict[str, object] = json.loads(sbom)
    return data


def _wheel(folder: Path) -> Path:
    """A tiny real wheel: METADATA with dependencies (one with an extra and a marker), WHEEL, RECORD."""
    path = folder / "greeting-1.2.0-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.1\nName: greeting\nVersion: 1.2.0\n"
        "Requires-Dist: requests>=2.31,<3\n"
        "Requires-Dist: click (>=8)\n"
        'Requires-Dist: rich[jupyter]>=13; python_version >= "3.11"\n'
    )
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("greeting/__init__.py", "def hello() -> str:\n    return 'hello'\n")
        wheel.writestr("greeting-1.2.0.dist-info/METADATA", metadata)
        wheel.writestr(
            "greeting-1.2.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr("greeting-1.2.0.dist-info/RECORD", "")
    return path


def test_a_wheel_lists_its_requires_dist_and_itself_as_the_metadata_component(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    sdist = tmp_path / "greeting-1.2.0.tar.gz"
    sdist.write_bytes(b"sdist bytes")

    data = _validate(python_sbom([wheel, sdist], name="greeting", digest=WHEEL_DIGEST, timestamp=PRODUCED))

    root = data["metadata"]["component"]
    assert (root["name"], root["version"], root["purl"]) == ("greeting", "1.2.0", "pkg:pypi/greeting@1.2.0")
    libraries = {c["name"]: c for c in data["components"] if c["type"] == "library"}
    assert set(libraries) == {"requests", "click", "rich"}
    assert libraries["requests"]["purl"] == "pkg:pypi/requests"
    requirement = {p["name"]: p["value"] for p in libraries["rich"]["properties"]}
    assert requirement == {"forge:requirement": 'rich[jupyter]>=13; python_version >= "3.11"'}
    files = {c["name"]: c["hashes"][0]["content"] for c in data["components"] if c["type"] == "file"}
    assert files == {
        wheel.name: hashlib.sha256(wheel.read_bytes()).hexdigest(),
        sdist.name: hashlib.sha256(b"sdist bytes").hexdigest(),
    }
    (graph,) = [d for d in data["dependencies"] if d["ref"] == root["bom-ref"]]
    assert len(graph["dependsOn"]) == 3


def test_the_same_inputs_give_the_same_bytes_and_the_serial_follows_the_digest(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    first = python_sbom([wheel], name="greeting", digest=WHEEL_DIGEST, timestamp=PRODUCED)
    again = python_sbom([wheel], name="greeting", digest=WHEEL_DIGEST, timestamp=PRODUCED)
    other = python_sbom([wheel], name="greeting", digest="sha256:" + "3" * 64, timestamp=PRODUCED)

    assert first == again
    assert json.loads(first)["serialNumber"] != json.loads(other)["serialNumber"]
    assert json.loads(first)["metadata"]["timestamp"].startswith("2026-03-04T05:06:07")


def test_a_python_artifact_without_a_wheel_or_with_a_broken_one_is_refused(tmp_path: Path) -> None:
    sdist = tmp_path / "greeting-1.2.0.tar.gz"
    sdist.write_bytes(b"x")
    with pytest.raises(TrackingError, match="needs a wheel"):
        python_sbom([sdist], name="greeting", digest=WHEEL_DIGEST, timestamp=PRODUCED)
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    with pytest.raises(TrackingError, match="not a readable wheel") as caught:
        python_sbom([broken], name="broken", digest=WHEEL_DIGEST, timestamp=PRODUCED)
    assert caught.value.where == broken.name


def _image(store: LayoutStore, tmp_path: Path, layers: list[dict[str, bytes]], tag: str = "v1") -> Descriptor:
    descriptors, diff_ids = [], []
    for number, members in enumerate(layers):
        archive = write_tar_gz(tmp_path / f"layer{number}.tar.gz", members)
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(archive.read_bytes())).hexdigest())
        descriptors.append(store.push_blob("api", archive, LAYER_TAR_GZIP))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    config_descriptor = store.push_blob("api", config.encode(), IMAGE_CONFIG)
    return store.push_manifest("api", Manifest(config=config_descriptor, layers=descriptors), tags=[tag])


BASE = {
    "var/lib/dpkg/status": DPKG_STATUS,
    "usr/lib/python3/dist-packages/flask-3.0.3.dist-info/METADATA": DIST_INFO,
    "etc/motd": b"welcome\n",
    "opt/cache/a": b"a",
    "opt/cache/b": b"b",
}


def test_a_container_lists_its_files_and_its_dpkg_apk_and_python_packages(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    _image(
        store,
        tmp_path,
        [
            BASE,
            {"lib/apk/db/installed": APK_INSTALLED, "etc/.wh.motd": b"", "opt/cache/.wh..wh..opq": b"", "app": b"x"},
        ],
    )

    sbom = container_sbom(ImageSource(store, "api", "v1"), name="api", digest=IMAGE_DIGEST, timestamp=PRODUCED)

    data = _validate(sbom)
    assert data["metadata"]["component"]["type"] == "container"
    purls = sorted(c["purl"] for c in data["components"] if c["type"] == "library")
    assert purls == [
        "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64",
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
        "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64",
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64",
        "pkg:pypi/flask@3.0.3",
    ]
    files = {c["name"]: c["hashes"][0]["content"] for c in data["components"] if c["type"] == "file"}
    # The whiteouts of the second layer removed etc/motd and everything under opt/cache.
    assert set(files) == {
        "var/lib/dpkg/status",
        "usr/lib/python3/dist-packages/flask-3.0.3.dist-info/METADATA",
        "lib/apk/db/installed",
        "app",
    }
    assert files["var/lib/dpkg/status"] == hashlib.sha256(DPKG_STATUS).hexdigest()
    summary = summarise_sbom(data)
    assert summary.components == 9 and summary.files == 4
    assert summary.packages[:2] == ("Flask@3.0.3", "base-files@12.4+deb12u5")


def test_a_package_database_deleted_by_a_later_layer_lists_no_packages(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    _image(store, tmp_path, [BASE, {"var/lib/dpkg/.wh.status": b""}])

    data = json.loads(
        container_sbom(ImageSource(store, "api", "v1"), name="api", digest=IMAGE_DIGEST, timestamp=PRODUCED)
    )

    assert sorted(c["name"] for c in data["components"] if c["type"] == "library") == ["Flask"]


def test_a_multi_platform_index_lists_each_platform(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    amd64 = _image(store, tmp_path, [{"bin/tool": b"amd64"}], tag="amd64")
    arm64 = _image(store, tmp_path, [{"bin/tool": b"arm64"}], tag="arm64")
    index = Index(
        manifests=[
            amd64.model_copy(update={"platform": Platform(architecture="amd64", os="linux")}),
            arm64.model_copy(update={"platform": Platform(architecture="arm64", os="linux")}),
        ]
    )
    store.push_manifest("api", index, tags=["multi"])
    assert amd64.media_type == MANIFEST and index.media_type == INDEX

    data = _validate(
        container_sbom(ImageSource(store, "api", "multi"), name="api", digest=IMAGE_DIGEST, timestamp=PRODUCED)
    )

    platforms = {p["value"]: c["hashes"][0]["content"] for c in data["components"] for p in c.get("properties", [])}
    assert platforms == {
        "linux/amd64": hashlib.sha256(b"amd64").hexdigest(),
        "linux/arm64": hashlib.sha256(b"arm64").hexdigest(),
    }


def test_an_image_that_is_not_there_is_named(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    with pytest.raises(TrackingError, match="cannot read the image") as caught:
        container_sbom(ImageSource(store, "api", "v9"), name="api", digest=IMAGE_DIGEST, timestamp=PRODUCED)
    assert caught.value.where == "api:v9"


def test_a_binary_lists_its_files_with_sha256(binary: Path) -> None:
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit=COMMIT, files=(binary,))

    data = _validate(artifact_sbom(artifact, digest=BINARY_DIGEST, timestamp=PRODUCED))

    assert data["metadata"]["component"]["type"] == "application"
    assert [(c["name"], c["hashes"][0]["content"]) for c in data["components"]] == [
        ("acmectl", BINARY_DIGEST.removeprefix("sha256:"))
    ]
    container = ProducedArtifact(name="api", type="container", project="api", commit=COMMIT)
    with pytest.raises(TrackingError, match="needs its image"):
        artifact_sbom(container, digest=IMAGE_DIGEST, timestamp=PRODUCED)
