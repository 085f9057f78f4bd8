"""The ``container`` producer: assembles an OCI image from the project's files onto a base, no daemon.

Like ``ko``, ``jib`` and ``crane append``: each layer is a reproducible tar+gzip written here
(sorted, every time ``SOURCE_DATE_EPOCH`` or 0, owner 0:0 unless told, gzip mtime 0), put after
the base's layers; the config is the base's with ours merged over it (env and labels by key,
entrypoint, cmd, workingDir, user, exposed ports), ``rootfs.diff_ids`` and ``history`` extended.
One image per platform, and an image index over them when there are several. The same inputs
give the same digest. The image is written to ``<project>/<outDir>/<artifact>`` as an OCI image
layout tagged with the artifact's name (built aside, then moved into place), which the ``docker``
publisher pushes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forge_core.sdk import (
    IMAGE_CONFIG,
    LAYER_TAR_GZIP,
    ArtifactSpec,
    ConfigurationError,
    Descriptor,
    ExecutionContext,
    Index,
    LayerEntry,
    LayoutReference,
    Manifest,
    OciStore,
    Platform,
    ProducedArtifact,
    ProjectRef,
    WorkWithdrawn,
    WrittenLayer,
    open_store,
    write_layer,
)
from forge_docker.base import SCRATCH, Base, BaseImage, platform_text
from forge_docker.layers import layer_entries
from forge_docker.settings import PLATFORM, ContainerSettings

_PORT = re.compile(r"(\d{1,5})(?:/(tcp|udp|sctp))?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[^=\s]+")

CREATED = "org.opencontainers.image.created"
REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


class ContainerProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        where = f"producer container of artifact {spec.name!r} (project {project.name!r})"
        settings = _settings(spec, where)
        root = ctx.workdir / project.path
        platforms = _platforms(settings, where)
        # Everything that can be wrong with the settings is found before anything is written.
        entries = [layer_entries(layer, number, root, where) for number, layer in enumerate(settings.layers)]
        only = [_layer_platforms(settings, number, platforms, where) for number in range(len(settings.layers))]
        epoch = _epoch(ctx, where)
        ports = _ports(settings, where)
        for name in settings.env:
            if not _ENV_NAME.fullmatch(name):
                raise ConfigurationError(f"env[{name!r}]: not a variable name (no '=' or spaces)", where=where)
        if not _TAG.fullmatch(spec.name):
            raise ConfigurationError(f"the artifact name {spec.name!r} cannot tag an image", where=where)
        out = _out_dir(root, settings.out_dir, where)
        build = _Build(settings, commit, epoch, ports, where)

        base = Base(settings.base, root, insecure=settings.insecure, secrets=ctx.secrets, where=where)
        try:
            out.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=out, prefix=f".{spec.name}.") as work:
                folder = Path(work) / spec.name
                store = open_store(LayoutReference(folder))
                written = [
                    _write(store, folder.name, Path(work) / "layers" / f"{n}.tar.gz", layer, epoch)
                    for n, layer in enumerate(entries)
                ]
                images: list[Descriptor] = []
                bases: dict[str, str | None] = {}
                for platform in platforms:
                    _check_stop(ctx, where)
                    image = base.image(platform, Path(work) / "base")
                    bases[platform_text(platform)] = image.manifest
                    ours = [
                        (n, w)
                        for n, (w, on) in enumerate(zip(written, only, strict=True))
                        if on is None or platform in on
                    ]
                    images.append(build.image(store, folder.name, platform, image, ours, base))
                    ctx.log(f"container: {platform_text(platform)} image {images[-1].digest}")
                root_descriptor = build.root(store, folder.name, images, spec.name, base)
                _check_stop(ctx, where)
                final = out / spec.name
                _replace(folder, final)
        finally:
            base.close()
        ctx.log(f"container: {spec.name} written to {final} as {root_descriptor.digest}")
        return ProducedArtifact(
            name=spec.name,
            type=spec.type,
            project=project.name,
            commit=commit,
            reference=f"oci-layout:{final}:{spec.name}",
            digest=root_descriptor.digest,
            metadata={
                "platforms": [platform_text(p) for p in platforms],
                "manifests": {platform_text(p): d.digest for p, d in zip(platforms, images, strict=True)},
                "base": settings.base,
                "baseDigest": base.digest,
                "baseManifests": bases,
                "created": build.created,
                "mediaType": root_descriptor.media_type,
                "files": sorted({"/" + e.path for layer in entries for e in layer}),
            },
        )


class _Build:
    """Writes configs, manifests and the index; knows what every image of the build shares."""

    def __init__(self, settings: ContainerSettings, commit: str, epoch: int, ports: list[str], where: str) -> None:
        self.settings, self.commit, self.ports, self.where = settings, commit, ports, where
        self.created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def annotations(self, base: Base, manifest: str | None) -> dict[str, str]:
        annotations = {CREATED: self.created, REVISION: self.commit}
        if self.settings.source:
            annotations[SOURCE] = self.settings.source
        if base.name != SCRATCH:
            annotations[BASE_NAME] = base.name
            if manifest:
                annotations[BASE_DIGEST] = manifest
        return {**annotations, **self.settings.annotations}

    def image(
        self,
        store: OciStore,
        repository: str,
        platform: Platform,
        base_image: BaseImage,
        ours: list[tuple[int, WrittenLayer]],
        base: Base,
    ) -> Descriptor:
        layers = [store.push_blob(repository, path, d.media_type) for d, path in base_image.layers]
        layers += [store.push_blob(repository, w.path, LAYER_TAR_GZIP) for _, w in ours]
        config = self.config(platform, base_image.config, ours)
        raw = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        manifest = Manifest(
            config=store.push_blob(repository, raw, IMAGE_CONFIG),
            layers=layers,
            annotations=self.annotations(base, base_image.manifest),
        )
        pushed = store.push_manifest(repository, manifest)
        return pushed.model_copy(update={"platform": platform})

    def config(
        self, platform: Platform, base: Mapping[str, Any], ours: list[tuple[int, WrittenLayer]]
    ) -> dict[str, Any]:
        s = self.settings
        inner: dict[str, Any] = dict(base.get("config") or {})
        env = dict(_split_env(inner.get("Env") or []))
        env.update(s.env)
        if env:
            inner["Env"] = [f"{k}={v}" for k, v in env.items()]
        if s.entrypoint is not None:
            inner["Entrypoint"] = s.entrypoint
            inner.pop("Cmd", None)  # as a Dockerfile's ENTRYPOINT: the base's cmd was for the base's entrypoint
        if s.cmd is not None:
            inner["Cmd"] = s.cmd
        if s.working_dir:
            inner["WorkingDir"] = s.working_dir
        if s.user:
            inner["User"] = s.user
        if self.ports:
            inner["ExposedPorts"] = {**(inner.get("ExposedPorts") or {}), **{p: {} for p in self.ports}}
        labels = {**(inner.get("Labels") or {}), REVISION: self.commit, **({SOURCE: s.source} if s.source else {})}
        inner["Labels"] = {**labels, **s.labels}
        rootfs = base.get("rootfs") or {}
        history = list(base.get("history") or [])
        for number, _ in ours:
            moved = ", ".join(f"{src} -> {dst}" for src, dst in s.layers[number].files.items())
            history.append({"created": self.created, "created_by": f"forge container: layers[{number}]: {moved}"})
        config: dict[str, Any] = {
            "created": self.created,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": inner,
            "rootfs": {"type": "layers", "diff_ids": [*(rootfs.get("diff_ids") or []), *(w.diff_id for _, w in ours)]},
            "history": history,
        }
        if platform.variant:
            config["variant"] = platform.variant
        return config

    def root(self, store: OciStore, repository: str, images: list[Descriptor], tag: str, base: Base) -> Descriptor:
        """The one image, or an index of all of them, tagged in the layout."""
        if len(images) == 1:
            fetched = store.fetch_manifest(repository, images[0].digest)
            return store.push_manifest(repository, fetched, tags=[tag])
        index = Index(manifests=images, annotations=self.annotations(base, base.digest))
        return store.push_manifest(repository, index, tags=[tag])


def _write(store: OciStore, repository: str, path: Path, entries: list[LayerEntry], epoch: int) -> WrittenLayer:
    written = write_layer(path, entries, mtime=epoch)
    store.push_blob(repository, written.path, LAYER_TAR_GZIP)
    return written


def _settings(spec: ArtifactSpec, where: str) -> ContainerSettings:
    try:
        return ContainerSettings.model_validate(spec.producer_settings)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid container producer settings: {problems}", where=where) from None


def _parse_platform(text: str, field: str, where: str) -> Platform:
    if not re.fullmatch(PLATFORM, text):
        raise ConfigurationError(
            f"{field}: {text!r} is not a platform: expected os/arch[/variant] (linux/amd64)", where=where
        )
    os_name, architecture, *variant = text.split("/")
    return Platform(os=os_name, architecture=architecture, variant=variant[0] if variant else None)


def _platforms(settings: ContainerSettings, where: str) -> list[Platform]:
    platforms: list[Platform] = []
    for number, text in enumerate(settings.platforms):
        platform = _parse_platform(text, f"platforms[{number}]", where)
        if platform in platforms:
            raise ConfigurationError(f"platforms[{number}]: {text!r} is listed twice", where=where)
        platforms.append(platform)
    return platforms


def _layer_platforms(
    settings: ContainerSettings, number: int, built: list[Platform], where: str
) -> list[Platform] | None:
    wanted = settings.layers[number].platforms
    if wanted is None:
        return None
    chosen = []
    for position, text in enumerate(wanted):
        field = f"layers[{number}].platforms[{position}]"
        platform = _parse_platform(text, field, where)
        if platform not in built:
            built_names = ", ".join(settings.platforms)
            raise ConfigurationError(
                f"{field}: {text!r} is not one of the built platforms ({built_names})", where=where
            )
        chosen.append(platform)
    return chosen


def _epoch(ctx: ExecutionContext, where: str) -> int:
    text = ctx.env.get("SOURCE_DATE_EPOCH", "0")
    if not text.isdigit():
        raise ConfigurationError(f"SOURCE_DATE_EPOCH {text!r} is not a whole number of seconds", where=where)
    return int(text)


def _ports(settings: ContainerSettings, where: str) -> list[str]:
    ports = []
    for number, text in enumerate(settings.exposed_ports):
        match = _PORT.fullmatch(text)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise ConfigurationError(f"exposedPorts[{number}]: {text!r} is not a port like 8080 or 53/udp", where=where)
        ports.append(f"{int(match.group(1))}/{match.group(2) or 'tcp'}")
    return ports


def _out_dir(root: Path, out_dir: str, where: str) -> Path:
    resolved = (root / out_dir).resolve()
    if not resolved.is_relative_to(root.resolve()) or resolved == root.resolve():
        raise ConfigurationError(f"outDir: {out_dir!r} must be a folder inside the project", where=where)
    return resolved


def _split_env(entries: list[str]) -> list[tuple[str, str]]:
    return [(entry.partition("=")[0], entry.partition("=")[2]) for entry in entries]


def _replace(staged: Path, final: Path) -> None:
    """Put the new layout in place of the old one; the old one is removed only once the new is there."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


def _check_stop(ctx: ExecutionContext, where: str) -> None:
    if ctx.stop.is_set():
        raise WorkWithdrawn("the image build was withdrawn; nothing was written", where=where)
