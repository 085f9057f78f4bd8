#!/usr/bin/env python3
"""Pushing blobs through the OCI store beside raw pushes of the same blobs, in one run.

    .venv/bin/python benchmarks/oci_push.py [--blobs 3] [--size-mb 20] [--rounds 5]

Starts a loopback `docker-registry` (as the tests do); each round writes N fresh random blobs
(so nobody mounts an earlier round's: skopeo remembers where it saw a blob) and pushes them as one
image to a fresh repository three ways, in rotating order: through `RegistryStore`, through
oras-py's `push`, and with `skopeo copy` from an OCI layout holding the same blobs. Prints the
medians and the ratios store/raw, and what attaching a small tracking image (three layers, a
`subject`, the referrers fallback index) costs beyond the push. Target: ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.domain.oci import EMPTY, EMPTY_JSON, Manifest
from forge_core.testing.registry import RegistryServer

MEDIA_TYPE = "application/vnd.forge.bench.v1"


def _store_push(address: str, files: list[Path], repository: str) -> None:
    with RegistryStore(address) as store:
        store.push_blob(repository, EMPTY_JSON, EMPTY)
        layers = [store.push_blob(repository, file, MEDIA_TYPE) for file in files]
        store.push_manifest(
            repository, Manifest(artifact_type="application/vnd.forge.bench", layers=layers), tags=["v1"]
        )


def _oras_push(address: str, files: list[Path], repository: str) -> None:
    import oras.client

    client = oras.client.OrasClient(hostname=address, insecure=True)
    client.push(
        f"{address}/{repository}:v1", files=[f"{f.name}:{MEDIA_TYPE}" for f in files], disable_path_validation=True
    )


def _skopeo_push(address: str, layout: Path, repository: str) -> None:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}:v1",
            f"docker://{address}/{repository}:v1",
        ],
        check=True,
    )


def _blobs(folder: Path, count: int, size_mb: int) -> tuple[list[Path], Path]:
    """Fresh random blobs (so no pusher mounts what an earlier round left) and a layout of them."""
    folder.mkdir()
    files = []
    for i in range(count):
        path = folder / f"blob-{i}.bin"
        path.write_bytes(os.urandom(size_mb * 1024**2))
        files.append(path)
    layout = LayoutStore(folder / "layout")
    layout.push_blob("image", EMPTY_JSON, EMPTY)
    layers = [layout.push_blob("image", f, MEDIA_TYPE) for f in files]
    layout.push_manifest("image", Manifest(artifact_type="application/vnd.forge.bench", layers=layers), tags=["v1"])
    return files, folder / "layout" / "image"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    times: dict[str, list[float]] = {"store": [], "oras": [], "skopeo": []}
    with tempfile.TemporaryDirectory(prefix="forge-bench-oci-") as tmp:
        folder = Path(tmp)
        (folder / "registry").mkdir()
        registry = RegistryServer(folder / "registry").start()
        try:
            for round_number in range(args.rounds):
                files, layout = _blobs(folder / f"round-{round_number}", args.blobs, args.size_mb)
                os.chdir(files[0].parent)  # oras-py resolves file names against the working directory
                pushes: dict[str, Callable[[str], None]] = {
                    "store": lambda repo, files=files: _store_push(registry.address, files, repo),
                    "oras": lambda repo, files=files: _oras_push(registry.address, files, repo),
                    "skopeo": lambda repo, layout=layout: _skopeo_push(registry.address, layout, repo),
                }
                names = list(pushes)
                for name in names[round_number % 3 :] + names[: round_number % 3]:  # rotate who goes first
                    started = time.perf_counter()
                    pushes[name](f"bench/{name}-{round_number}")
                    times[name].append(time.perf_counter() - started)
                _tracking(registry.address, f"bench/tracking-{round_number}")
        finally:
            os.chdir(folder.parent)
            registry.stop()
    store, oras, skopeo = (statistics.median(times[name]) for name in ("store", "oras", "skopeo"))

    total = args.blobs * args.size_mb
    print(f"push of {args.blobs} x {args.size_mb} MB ({total} MB), median of {args.rounds}:")
    print(f"  forge RegistryStore   {store:7.3f} s")
    print(f"  raw oras-py push      {oras:7.3f} s   ratio store/oras   {store / oras:5.2f}")
    print(f"  raw skopeo copy       {skopeo:7.3f} s   ratio store/skopeo {store / skopeo:5.2f}")
    tracking = statistics.median(_TRACKING_TIMES)
    print(f"tracking image beyond the push (3 layers, subject, fallback index): {tracking * 1000:6.1f} ms")


def _tracking(address: str, repository: str) -> None:
    """Only the tracking part is timed: the subject is pushed before the clock starts."""
    with RegistryStore(address) as store:
        store.push_blob(repository, EMPTY_JSON, EMPTY)
        subject = store.push_manifest(repository, Manifest(artifact_type="application/vnd.forge.bench"), tags=["img"])
        started = time.perf_counter()
        layers = [
            store.push_blob(repository, b'{"name":"bench"}', "application/vnd.forge.artifact.metadata.v1+json"),
            store.push_blob(repository, b'{"bomFormat":"CycloneDX"}', "application/vnd.cyclonedx+json"),
            store.push_blob(repository, b'{"_type":"https://in-toto.io/Statement/v1"}', "application/vnd.in-toto+json"),
        ]
        store.attach_referrer(
            repository,
            Manifest(artifact_type="application/vnd.forge.artifact.tracking.v1", layers=layers, subject=subject),
            tags=["sha-" + "0" * 40],
        )
        _TRACKING_TIMES.append(time.perf_counter() - started)


_TRACKING_TIMES: list[float] = []

if __name__ == "__main__":
    main()
