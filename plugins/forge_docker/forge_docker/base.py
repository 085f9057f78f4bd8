"""The image a container is built onto: ``scratch``, an OCI image layout, or a registry image.

A base that is an image index gives, per built platform, the manifest of that platform (an
unset variant in the wanted platform matches any); a single image must be of that platform.
The chosen manifest's layers are fetched (verified against their digests) to be copied into the
new image, first, unchanged; its config is what the new config is merged over.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.sdk import (
    LAYER_TAR_GZIP,
    ConfigurationError,
    Descriptor,
    FetchedManifest,
    Index,
    LayoutReference,
    Manifest,
    OciError,
    OciNotFound,
    OciSettings,
    OciStore,
    Platform,
    open_store,
    parse_reference,
)
from forge_docker.credentials import registry_credentials

SCRATCH = "scratch"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"  # the same bytes as OCI's tar+gzip


def platform_text(platform: Platform) -> str:
    return "/".join(p for p in (platform.os, platform.architecture, platform.variant) if p)


@dataclass(frozen=True)
class BaseImage:
    """One platform's base: its manifest digest, its layers (descriptor and fetched file), its config."""

    manifest: str | None = None
    layers: tuple[tuple[Descriptor, Path], ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)


class Base:
    """An opened base image; ``image(platform, folder)`` fetches one platform's blobs into ``folder``."""

    def __init__(self, text: str, project: Path, *, insecure: bool, secrets: Mapping[str, str], where: str) -> None:
        self.name, self._where = text, where
        self.digest: str | None = None
        self._store: OciStore | None = None
        if text == SCRATCH:
            return
        try:
            reference = parse_reference(text)
        except OciError as error:
            raise ConfigurationError(f"base: {error.message}", where=where) from None
        if isinstance(reference, LayoutReference):
            path = reference.path if reference.path.is_absolute() else (project / reference.path).resolve()
            if not (path / "oci-layout").is_file():
                raise ConfigurationError(f"base: {path} is not an OCI image layout (no oci-layout file)", where=where)
            reference = LayoutReference(path, reference.tag, reference.digest)
            self._store = open_store(reference)
        else:
            registry = reference.registry
            self._store = open_store(
                reference,
                OciSettings(insecure_registries=[registry] if insecure else []),
                credentials=registry_credentials(secrets, where=where, field="base"),
            )
        self._repository = reference.repository
        try:
            self._root = self._fetch(reference.target or "latest")
        except BaseException:
            self.close()
            raise
        self.digest = self._root.descriptor.digest

    def image(self, platform: Platform, folder: Path) -> BaseImage:
        if self._store is None:
            return BaseImage()
        manifest = self._manifest_for(platform)
        document = manifest.document
        assert isinstance(document, Manifest)  # _manifest_for returns image manifests only
        config = json.loads(self._blob(document.config, folder).read_bytes())
        if not isinstance(config, dict):
            raise ConfigurationError(f"base: {self.name}'s config is not a JSON object", where=self._where)
        layers = tuple((_oci_layer(layer), self._blob(layer, folder)) for layer in document.layers)
        return BaseImage(manifest.descriptor.digest, layers, config)

    def close(self) -> None:
        close: Callable[[], None] | None = getattr(self._store, "close", None)
        if close is not None:
            close()

    # --- internals -----------------------------------------------------------------------------

    def _fetch(self, target: str) -> FetchedManifest:
        assert self._store is not None
        try:
            return self._store.fetch_manifest(self._repository, target)
        except OciNotFound as error:
            raise ConfigurationError(f"base: cannot read {self.name}: {error.message}", where=self._where) from error

    def _manifest_for(self, platform: Platform) -> FetchedManifest:
        wanted = platform_text(platform)
        document = self._root.document
        if isinstance(document, Index):
            offered = [entry for entry in document.manifests if entry.platform is not None]
            for entry in offered:
                have = entry.platform
                assert have is not None
                if (have.os, have.architecture) == (platform.os, platform.architecture) and (
                    platform.variant is None or have.variant == platform.variant
                ):
                    chosen = self._fetch(entry.digest)
                    if not isinstance(chosen.document, Manifest):
                        break
                    return chosen
            names = ", ".join(sorted({platform_text(e.platform) for e in offered if e.platform})) or "none"
            raise ConfigurationError(
                f"base: {self.name} has no image for platform {wanted!r} (it has: {names})", where=self._where
            )
        config = json.loads(self._blob_bytes(document.config))
        have = Platform(
            os=str(config.get("os", "")),
            architecture=str(config.get("architecture", "")),
            variant=config.get("variant"),
        )
        if (have.os, have.architecture) != (platform.os, platform.architecture) or (
            platform.variant is not None and have.variant != platform.variant
        ):
            raise ConfigurationError(
                f"base: {self.name} is a single {platform_text(have)!r} image, it has no platform {wanted!r}",
                where=self._where,
            )
        return self._root

    def _blob(self, descriptor: Descriptor, folder: Path) -> Path:
        assert self._store is not None
        destination = folder / descriptor.digest.replace(":", "-")
        if destination.is_file():
            return destination
        try:
            return self._store.fetch_blob(self._repository, descriptor, destination)
        except OciNotFound as error:
            raise ConfigurationError(
                f"base: cannot read blob {descriptor.digest} of {self.name}: {error.message}", where=self._where
            ) from error

    def _blob_bytes(self, descriptor: Descriptor) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            return self._blob(descriptor, Path(folder)).read_bytes()


def _oci_layer(layer: Descriptor) -> Descriptor:
    if layer.media_type == _DOCKER_LAYER:
        return layer.model_copy(update={"media_type": LAYER_TAR_GZIP})
    return layer
