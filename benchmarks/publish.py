#!/usr/bin/env python3
"""Publishing a release's container through forge beside a raw push of the same blobs, in one run.

    .venv/bin/python benchmarks/publish.py [--layers 3] [--size-mb 20] [--rounds 5]

Starts a loopback `docker-registry` (as the tests do). Each round writes a fresh container image
(N gzip layers of random content, so no pusher mounts an earlier round's blobs: skopeo remembers
where it saw one) into an OCI image layout, then, in rotating order:

- forge: the docker publisher (``forge_docker``) publishes it, as the artifact job calls it
  (plan, tag checks, blob checks, streaming, the manifest under the commit and version tags,
  the digest round trip) while the worker's tracker computes the image's SBOM beside it (as the
  artifact job starts it when the artifact is produced), then the tracker creates the tracking
  image (SLSA provenance, DSSE signature, pushed to the registry's tracking repository and
  attached to the image as a referrer): that last part is the cost beyond the push, timed apart;
- raw: ``skopeo copy`` of the same layout to another repository.

The SBOM of a container lists every file of the image with its SHA-256, so it reads the whole
image: its own time is printed apart (it grows with the image's size, and overlaps the push).

Prints the medians, the ratio publish/raw (target <= 1.3) and the tracking image's cost per
artifact beyond the push (target < 200 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from forge_core.adapters.artifact_tracking import ArtifactTracking
from forge_core.adapters.oci import LayerEntry, write_layer
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.domain.models import ProducedArtifact, PublishTarget
from forge_core.domain.oci import IMAGE_CONFIG, LAYER_TAR_GZIP, Descriptor, Manifest
from forge_core.ports.contexts import ExecutionContext, TrackingRequest
from forge_core.services.sbom import ImageSource, artifact_sbom
from forge_core.settings import Settings
from forge_core.settings.tracking import TrackingSettings
from forge_core.testing.registry import RegistryServer
from forge_docker.publisher import DockerPublisher

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _image(folder: Path, layers: int, size_mb: int) -> tuple[str, str]:
    """A fresh container image in an OCI layout: its ``oci-layout:`` reference and digest."""
    folder.mkdir()
    written = [
        write_layer(folder / f"layer-{i}.tar.gz", [LayerEntry(f"data/part-{i}.bin", os.urandom(size_mb * 1024**2))])
        for i in range(layers)
    ]
    config = {
        "architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/data/run"]},
        "rootfs": {"type": "layers", "diff_ids": [w.diff_id for w in written]},
    }
    layout = LayoutStore(folder / "layout")
    config_descriptor = layout.push_blob("image", json.dumps(config).encode(), IMAGE_CONFIG)
    descriptors = [layout.push_blob("image", w.path, LAYER_TAR_GZIP) for w in written]
    for w in written:
        w.path.unlink()  # the layout holds them now
    manifest = Manifest(media_type="application/vnd.oci.image.manifest.v1+json", config=config_descriptor,
                        layers=descriptors)
    pushed: Descriptor = layout.push_manifest("image", manifest, tags=["v1"])
    return f"oci-layout:{folder / 'layout' / 'image'}:v1", pushed.digest


def image_source(artifact: ProducedArtifact) -> ImageSource | None:
    """The container's image as the tracker reads it for the SBOM."""
    from forge_core.adapters.artifact_tracking import _image

    return _image(artifact)


def _skopeo(reference: str, destination: str) -> None:
    source = "oci:" + reference.removeprefix("oci-layout:")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", source, f"docker://{destination}"],
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    times: dict[str, list[float]] = {"forge": [], "raw": [], "tracking": [], "sbom": []}
    with tempfile.TemporaryDirectory(prefix="forge-bench-publish-") as tmp:
        folder = Path(tmp)
        (folder / "registry").mkdir()
        registry = RegistryServer(folder / "registry").start()
        tracker = ArtifactTracking(
            Settings(state_dir=folder / "state", tracking=TrackingSettings(registry=f"{registry.address}/tracking"))
        )
        publisher = DockerPublisher()
        try:
            for n in range(args.rounds):
                reference, digest = _image(folder / f"round-{n}", args.layers, args.size_mb)
                artifact = ProducedArtifact(name=f"api{n}", type="container", project="api", commit=COMMIT,
                                            reference=reference, digest=digest, metadata={"tag": "api/v1.2.0"})
                target = PublishTarget(name="registry", type="docker",
                                       settings={"registry": registry.address, "namespace": "forge"})

                def through_forge(
                    artifact: ProducedArtifact = artifact, target: PublishTarget = target, n: int = n
                ) -> None:
                    produced_at = datetime.now(UTC)
                    started = time.perf_counter()
                    # as the artifact job does: the SBOM starts with the push, the rest follows it
                    head_start = tracker.begin(artifact, produced_at)
                    location = publisher.publish(artifact, target, ExecutionContext(workdir=folder, log=lambda _: None))
                    times["forge"].append(time.perf_counter() - started)
                    now = datetime.now(UTC)
                    started = time.perf_counter()
                    tracker.track(TrackingRequest(
                        artifact=artifact, repository="acme/monorepo", run_id=f"bench-{n}", producer="container",
                        producer_settings={}, started_at=produced_at, finished_at=now, published=(location,),
                        attach_to=((location, None),), produced_at=produced_at, head_start=head_start,
                    ))
                    times["tracking"].append(time.perf_counter() - started)
                    started = time.perf_counter()  # the part of it that reads every file of the image
                    artifact_sbom(artifact, digest=artifact.digest or "", timestamp=now, image=image_source(artifact))
                    times["sbom"].append(time.perf_counter() - started)

                def raw(reference: str = reference, n: int = n) -> None:
                    started = time.perf_counter()
                    _skopeo(reference, f"{registry.address}/raw/api{n}:v1.2.0")
                    times["raw"].append(time.perf_counter() - started)

                for push in (through_forge, raw) if n % 2 == 0 else (raw, through_forge):  # rotate who goes first
                    push()
        finally:
            registry.stop()
    forge, raw_push, tracking = (statistics.median(times[name]) for name in ("forge", "raw", "tracking"))
    total = args.layers * args.size_mb
    print(f"container of {args.layers} layers x {args.size_mb} MB ({total} MB), median of {args.rounds} rounds:")
    print(f"  forge docker publisher   {forge:7.3f} s")
    print(f"  raw skopeo copy          {raw_push:7.3f} s   ratio forge/raw {forge / raw_push:5.2f}  (target <= 1.3)")
    print(f"  tracking image per artifact beyond the push: {tracking * 1000:6.1f} ms  (target < 200 ms)")
    sbom = statistics.median(times["sbom"])
    print(f"    the SBOM alone (every file of the image read and hashed): {sbom * 1000:6.1f} ms, computed beside "
          "the push; beyond it: metadata, provenance, signature, the tracking push and the referrer")


if __name__ == "__main__":
    main()
