"""Small real OCI images for the tests: a config and a reproducible gzip'd tar layer, in a layout.

The fixtures ``one_image`` and ``two_platforms`` hand out the builders below.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_core.sdk import Descriptor, Index, Manifest, open_store, parse_reference

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd tar of ``files`` (sorted, mtime 0) and its diff id (the uncompressed digest)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    zipped = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=zipped, mtime=0) as out:
        out.write(raw.getvalue())
    return zipped.getvalue(), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


def _image(layout: Path, files: dict[str, bytes], architecture: str) -> Descriptor:
    """Push one image's blobs and manifest into the layout (untagged); its descriptor."""
    store = open_store(parse_reference(f"oci-layout:{layout}"))
    data, diff_id = layer(files)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Entrypoint": ["/app/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    manifest = Manifest(
        config=store.push_blob(layout.name, config, CONFIG), layers=[store.push_blob(layout.name, data, LAYER)]
    )
    return store.push_manifest(layout.name, manifest)


def image_layout(folder: Path, files: dict[str, bytes], *, tag: str = "latest") -> tuple[str, str]:
    """A one-platform image in the layout ``folder`` tagged ``tag``: its reference and digest."""
    store = open_store(parse_reference(f"oci-layout:{folder}"))
    descriptor = _image(folder, files, "amd64")
    manifest = store.fetch_manifest(folder.name, descriptor.digest).document
    store.push_manifest(folder.name, manifest, tags=[tag])
    return f"oci-layout:{folder}:{tag}", descriptor.digest


def index_layout(folder: Path, files: dict[str, bytes], *, tag: str = "latest") -> tuple[str, str, list[str]]:
    """A two-platform (amd64, arm64) image index: its reference, its digest, its manifests' digests."""
    store = open_store(parse_reference(f"oci-layout:{folder}"))
    children = []
    for architecture in ("amd64", "arm64"):
        image = _image(folder, {**files, "arch": architecture.encode()}, architecture)
        platform = {"platform": {"architecture": architecture, "os": "linux"}}
        children.append(Descriptor.model_validate({**image.model_dump(by_alias=True, exclude_none=True), **platform}))
    descriptor = store.push_manifest(folder.name, Index(manifests=children), tags=[tag])
    return f"oci-layout:{folder}:{tag}", descriptor.digest, [c.digest for c in children]


@pytest.fixture
def one_image() -> Callable[..., tuple[str, str]]:
    return image_layout


@pytest.fixture
def two_platforms() -> Callable[..., tuple[str, str, list[str]]]:
    return index_layout
