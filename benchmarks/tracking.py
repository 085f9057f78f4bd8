#!/usr/bin/env python3
"""What a tracking image costs per artifact, measured beside a raw push of the same three layers.

    .venv/bin/python benchmarks/tracking.py [--rounds 9] [--files 5000]

Starts a loopback `docker-registry` (as the tests do). Per round and per store (the embedded
layout and the registry), for a fresh artifact: the SBOM (a binary's files; a container image of
``--files`` files in one gzip layer, read back through the store), the signed provenance and
``create_tracking_image``, then ``read_tracking_image`` with verification; beside it, the same
three layers and manifest pushed raw through the store (no SBOM, no signing, no checks). Prints
medians and the overhead of creation beyond the raw push. Target: under 200 ms per artifact.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from forge_core.adapters.oci.archive import write_tar_gz
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import IMAGE_CONFIG, LAYER_TAR_GZIP, Manifest
from forge_core.domain.tracking import TrackingMetadata
from forge_core.ports.oci import OciStore
from forge_core.services.sbom import ImageSource, container_sbom, files_sbom
from forge_core.services.signing import Signer
from forge_core.services.tracking import create_tracking_image, read_tracking_image, tracking_manifest
from forge_core.testing.registry import RegistryServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _metadata(name: str, kind: str, digest: str, round_number: int) -> TrackingMetadata:
    commit = hashlib.sha1(f"{name}{round_number}{time.time_ns()}".encode()).hexdigest()
    return TrackingMetadata(
        name=name, type=kind, project="bench", repository="acme/monorepo", commit=commit, run_id=f"run-{commit[:8]}",
        producer="exec", produced_at=NOW, started_at=NOW, finished_at=NOW, digest=digest,
    )  # fmt: skip


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def _image(store: OciStore, folder: Path, files: int) -> tuple[str, str]:
    members: dict[str, Path | bytes] = {f"usr/share/bench/{n:05d}.txt": os.urandom(512) for n in range(files)}
    members["var/lib/dpkg/status"] = b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n"
    layer = store.push_blob("bench/image", write_tar_gz(folder / "layer.tar.gz", members), LAYER_TAR_GZIP)
    config = store.push_blob("bench/image", b'{"architecture":"amd64","os":"linux"}', IMAGE_CONFIG)
    descriptor = store.push_manifest("bench/image", Manifest(config=config, layers=[layer]), tags=["v1"])
    return "bench/image", descriptor.digest


def _raw_push(store: OciStore, repository: str, manifest: Manifest, blobs: dict[str, bytes], tag: str) -> None:
    types = {d.digest: d.media_type for d in manifest.layers} | {manifest.config.digest: manifest.config.media_type}
    for blob_digest, data in blobs.items():
        store.push_blob(repository, data, types[blob_digest])
    store.push_manifest(repository, manifest, tags=[tag])


def _measure(
    store: OciStore, name: str, kind: str, digest: str, make_sbom: Callable[[], bytes], rounds: int, signer: Signer
) -> list[float]:
    """Medians (ms) of: the SBOM, create_tracking_image, a raw push of the same content, read+verify."""
    timings: list[list[float]] = [[], [], [], []]
    for number in range(rounds):
        metadata = _metadata("acmectl" if kind == "binary" else "api", kind, digest, number)
        start = time.perf_counter()
        sbom = make_sbom()
        timings[0].append((time.perf_counter() - start) * 1000)
        timings[1].append(_timed(partial(create_tracking_image, store, metadata, sbom, signer)))
        # The raw push: the same kind of bytes, built beforehand, pushed with no checks.
        raw = _metadata("raw", kind, digest, number)
        manifest, blobs = tracking_manifest(raw, sbom, signer=signer)
        timings[2].append(_timed(partial(_raw_push, store, f"raw/{name}/{kind}", manifest, blobs, f"sha-{raw.commit}")))
        read = partial(read_tracking_image, store, f"monorepo/bench/{metadata.name}", f"sha-{metadata.commit}")
        timings[3].append(_timed(partial(read, signer.verifier())))
    return [statistics.median(values) for values in timings]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--files", type=int, default=5000, help="files in the container's layer")
    args = parser.parse_args()
    signer = Signer(ed25519.Ed25519PrivateKey.generate())

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        binary = folder / "acmectl"
        binary.write_bytes(os.urandom(8 * 1024**2))
        binary_digest = "sha256:" + hashlib.sha256(binary.read_bytes()).hexdigest()
        server = RegistryServer(folder / "registry").start()
        try:
            stores: dict[str, OciStore] = {
                "layout": LayoutStore(folder / "oci"),
                "registry": RegistryStore(server.address),
            }
            for store_name, store in stores.items():
                image_repository, image_digest = _image(store, folder, args.files)
                source = ImageSource(store, image_repository, "v1")
                cases: list[tuple[str, str, str, Callable[[], bytes]]] = [
                    ("binary (8 MiB)", "binary", binary_digest,
                     partial(files_sbom, [binary], name="acmectl", digest=binary_digest, timestamp=NOW)),
                    (f"container ({args.files} files)", "container", image_digest,
                     partial(container_sbom, source, name="api", digest=image_digest, timestamp=NOW)),
                ]  # fmt: skip
                for case, kind, digest, make_sbom in cases:
                    sbom, create, raw, read = _measure(store, store_name, kind, digest, make_sbom, args.rounds, signer)
                    print(
                        f"{store_name:8} {case:22} sbom {sbom:7.1f} ms | create {create:6.1f} ms, "
                        f"raw push {raw:6.1f} ms, overhead {create - raw:6.1f} ms | read+verify {read:6.1f} ms"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
