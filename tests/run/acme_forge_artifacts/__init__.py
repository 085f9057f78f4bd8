"""A third party's forge plugin, written against ``forge_core.sdk`` alone (the tests build it into
a wheel and install it beside the core): the ``acme-layout`` producer and the ``shelf`` publisher.

- ``acme-layout`` writes ``producer_settings["files"]`` (name → text) reproducibly: for a
  ``container`` as a one-layer OCI image in a layout (``oci-layout:PATH:latest``), for an
  ``archive`` as one file. ``forget: true`` declares a file it does not write.
- ``shelf`` appends every call (the artifact it was given, its secrets' names) to
  ``<folder>/calls.jsonl``; it has no ``plan``: without ``--publish`` it is not called.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from forge_core.sdk import (
    ArtifactSpec,
    ExecutionContext,
    Manifest,
    ProducedArtifact,
    ProducerRegistrar,
    ProjectRef,
    PublishedLocation,
    PublisherRegistrar,
    PublishTarget,
    hookimpl,
    open_store,
    parse_reference,
)

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
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


class LayoutProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        files = {name: str(text).encode() for name, text in dict(spec.producer_settings.get("files", {})).items()}
        out = ctx.workdir / "out"
        if spec.type == "container":
            layout = out / spec.name
            store = open_store(parse_reference(f"oci-layout:{layout}"))
            data, diff_id = _layer(files)
            config = json.dumps(
                {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
                sort_keys=True,
            ).encode()
            manifest = Manifest(
                config=store.push_blob(layout.name, config, CONFIG),
                layers=[store.push_blob(layout.name, data, LAYER)],
            )
            descriptor = store.push_manifest(layout.name, manifest, tags=["latest"])
            ctx.log(f"acme-layout: image {descriptor.digest} in {layout}")
            return ProducedArtifact(
                name=spec.name, type=spec.type, project=project.name, commit=commit,
                reference=f"oci-layout:{layout}:latest", digest=descriptor.digest,
            )
        out.mkdir(parents=True, exist_ok=True)
        written = out / f"{spec.name}.txt"
        written.write_bytes(b"".join(files[name] for name in sorted(files)))
        declared = [written]
        if spec.producer_settings.get("forget"):
            declared.append(out / "forgotten.txt")
        ctx.log(f"acme-layout: wrote {written.name}")
        return ProducedArtifact(name=spec.name, type=spec.type, project=project.name, commit=commit,
                                files=tuple(declared))


class ShelfPublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        folder = Path(str(target.settings["folder"]))
        folder.mkdir(parents=True, exist_ok=True)
        call = {
            "name": artifact.name, "type": artifact.type, "project": artifact.project, "commit": artifact.commit,
            "digest": artifact.digest, "reference": artifact.reference,
            "files": [Path(f).name for f in artifact.files], "secrets": sorted(ctx.secrets),
        }
        with (folder / "calls.jsonl").open("a") as calls:
            calls.write(json.dumps(call) + "\n")
        ctx.log(f"shelf: {artifact.name} shelved")
        return PublishedLocation(
            publisher=target.name, type=target.type, uri=f"{folder.as_uri()}/{artifact.name}", digest=artifact.digest
        )


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add("acme-layout", LayoutProducer, artifact_types=["container", "archive"], description="Test images")


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add("shelf", ShelfPublisher, description="Record every call in a folder")
