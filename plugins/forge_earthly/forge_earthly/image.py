"""A container target's images, per platform, into one OCI image layout.

Earthly's ``SAVE IMAGE`` goes to a Docker daemon, which a worker need not have, so the container
convention is an artifact: the target saves its image as an OCI image layout (what BuildKit's
``type=oci`` output, ``buildah push oci-archive:`` and ``skopeo copy … oci-archive:`` write), a
folder or a tar of one, at ``image_path``; a ``docker save`` archive is accepted too, and becomes
a layout of its config and layers as they are. Each platform's run writes its own; this module copies
their blobs and manifests, byte for byte, into ``<out>/image`` and tags there either the one
image or, for several platforms, an index listing each platform's image (its digest depends only
on theirs: the same images give the same index)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from forge_core.sdk import (
    Descriptor,
    FetchedManifest,
    ForgeError,
    Index,
    LayoutReference,
    Manifest,
    OciError,
    OciStore,
    open_store,
)

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
"""What a docker-archive's parts become: its layers are uncompressed tars, kept as they are."""


def read_layout(saved: Path, unpack_to: Path, *, where: str) -> Path:
    """The layout folder the target saved at ``saved``: itself, or its tar unpacked."""
    if saved.is_dir():
        folder = saved
    else:
        try:
            with tarfile.open(saved) as archive:
                archive.extractall(unpack_to, filter="data")  # no links or paths out of the folder
        except (tarfile.TarError, OSError) as exc:
            raise ForgeError(f"{saved.name} is not a tar of an OCI image layout: {exc}", where=where) from None
        folder = unpack_to
    if (folder / "oci-layout").is_file() and (folder / "index.json").is_file():
        return folder
    if (folder / "manifest.json").is_file():
        return _from_docker_archive(folder, unpack_to.with_name(f"{unpack_to.name}.oci"), saved.name, where=where)
    raise ForgeError(f"{saved.name} is neither an OCI image layout (no oci-layout and index.json) nor a "
                     "docker-archive (no manifest.json)", where=where)


def _from_docker_archive(folder: Path, destination: Path, name: str, *, where: str) -> Path:
    """A ``docker save`` archive as an OCI image layout: its config and (uncompressed) layers as
    they are, under an OCI manifest built from them, so the same archive gives the same digest."""
    try:
        entries = json.loads((folder / "manifest.json").read_text())
        [entry] = entries
        config_file, layer_files = folder / entry["Config"], [folder / layer for layer in entry["Layers"]]
    except (ValueError, KeyError, TypeError):
        raise ForgeError(f"{name}: a docker-archive must hold exactly one image (manifest.json)", where=where) from None
    for path in (config_file, *layer_files):
        if not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
            raise ForgeError(f"{name}: manifest.json names {path.relative_to(folder)}, which it does not hold",
                             where=where)
    target = LayoutReference(destination)
    store = open_store(target)
    config = store.push_blob(target.repository, config_file, CONFIG)
    layers = [store.push_blob(target.repository, layer, LAYER_TAR) for layer in layer_files]
    store.push_manifest(target.repository, Manifest(config=config, layers=layers))
    return destination


def _check_platform(folder: Path, root: FetchedManifest, platform: str | None, *, where: str) -> None:
    """An image saved for one platform must say it is for that platform (its config's os/arch)."""
    if platform is None or not isinstance(root.document, Manifest):
        return
    try:
        config = json.loads(_blob_path(folder, root.document.config).read_bytes())
        built = f"{config['os']}/{config['architecture']}"
    except (OSError, ValueError, KeyError, TypeError):
        raise ForgeError(f"the image saved for {platform} has no readable config (os, architecture)",
                         where=where) from None
    if built != "/".join(platform.split("/")[:2]):
        raise ForgeError(f"the image saved for {platform} is built for {built}", where=where)


def assemble(layouts: list[tuple[str | None, Path]], destination: Path, tag: str, *, where: str) -> Descriptor:
    """Copy each platform's image into the layout ``destination`` and tag it; the root's descriptor."""
    target = LayoutReference(destination)
    store = open_store(target)
    try:
        roots = [(platform, _copy(folder, platform, store, target.repository, where=where))
                 for platform, folder in layouts]
        if len(roots) == 1:
            fetched = roots[0][1]
            return store.push_manifest(target.repository, fetched, tags=[tag])
        entries: list[Descriptor] = []
        for platform, fetched in roots:
            if isinstance(fetched.document, Index):
                raise ForgeError(f"the image for {platform} is already an index: save one image per platform",
                                 where=where)
            assert platform is not None  # several roots come from several named platforms
            os_name, arch, *variant = platform.split("/")
            described = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
            entries.append(Descriptor.model_validate({
                "mediaType": fetched.descriptor.media_type, "digest": fetched.descriptor.digest,
                "size": fetched.descriptor.size, "platform": described,
            }))
        index = Index(manifests=entries)
        return store.push_manifest(target.repository, index, tags=[tag])
    except OciError as exc:
        raise ForgeError(f"cannot assemble the image layout {destination}: {exc}", where=where) from None


def _copy(folder: Path, platform: str | None, store: OciStore, repository: str, *, where: str) -> FetchedManifest:
    """Copy the one image of the layout ``folder`` (its blobs, then its manifest) into ``store``."""
    source_ref = LayoutReference(folder)
    source = open_store(source_ref)
    entries = json.loads((folder / "index.json").read_text()).get("manifests", [])
    digests = sorted({entry["digest"] for entry in entries})
    if len(digests) != 1:
        raise ForgeError(f"the saved layout {folder.name} holds {len(digests)} images, expected one", where=where)
    root = source.fetch_manifest(source_ref.repository, digests[0])
    _check_platform(folder, root, platform, where=where)
    _copy_tree(folder, root, source, source_ref.repository, store, repository)
    return root


def _copy_tree(folder: Path, fetched: FetchedManifest, source: OciStore, source_repo: str,
               store: OciStore, repository: str) -> None:
    document = fetched.document
    if isinstance(document, Manifest):
        for blob in (document.config, *document.layers):
            store.push_blob(repository, _blob_path(folder, blob), blob.media_type)
    else:
        for child in document.manifests:
            nested = source.fetch_manifest(source_repo, child.digest)
            _copy_tree(folder, nested, source, source_repo, store, repository)
    store.push_blob(repository, fetched.raw, fetched.descriptor.media_type)


def _blob_path(folder: Path, blob: Descriptor) -> Path:
    algorithm, _, hex_digest = blob.digest.partition(":")
    return folder / "blobs" / algorithm / hex_digest
