"""A container target's images, per platform, into one OCI image layout.

Earthly's ``SAVE IMAGE`` goes to a Docker daemon, which a worker need not have, so the container
convention is an artifact: the target saves its image as an OCI image layout (what BuildKit's
``type=oci`` output, ``buildah push oci-archive:`` and ``skopeo copy … oci-archive:`` write), a
folder or a tar of one, at ``image_path``. Each platform's run writes its own; this module copies
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
    if not (folder / "oci-layout").is_file() or not (folder / "index.json").is_file():
        kind = " (a docker-archive: save an OCI layout instead)" if (folder / "manifest.json").is_file() else ""
        raise ForgeError(f"{saved.name} is not an OCI image layout (no oci-layout and index.json){kind}",
                         where=where)
    return folder


def assemble(layouts: list[tuple[str | None, Path]], destination: Path, tag: str, *, where: str) -> Descriptor:
    """Copy each platform's image into the layout ``destination`` and tag it; the root's descriptor."""
    target = LayoutReference(destination)
    store = open_store(target)
    try:
        roots = [(platform, _copy(folder, store, target.repository, where=where)) for platform, folder in layouts]
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


def _copy(folder: Path, store: OciStore, repository: str, *, where: str) -> FetchedManifest:
    """Copy the one image of the layout ``folder`` (its blobs, then its manifest) into ``store``."""
    source_ref = LayoutReference(folder)
    source = open_store(source_ref)
    entries = json.loads((folder / "index.json").read_text()).get("manifests", [])
    digests = sorted({entry["digest"] for entry in entries})
    if len(digests) != 1:
        raise ForgeError(f"the saved layout {folder.name} holds {len(digests)} images, expected one", where=where)
    root = source.fetch_manifest(source_ref.repository, digests[0])
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
