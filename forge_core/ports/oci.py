"""The OCI store port: content-addressed blobs and manifests in repositories, tags, and referrers.

Two adapters implement it: a registry (OCI Distribution API, :mod:`forge_core.adapters.oci.registry`)
and an OCI image-layout folder (:mod:`forge_core.adapters.oci.layout`, the embedded default).
A store is bound to one registry host or one layout root; ``repository`` is a path inside it
(``monorepo/api/container``). Every failure is an :class:`~forge_core.domain.oci.OciError`
naming the registry and the reference, never a credential.

Pushing is idempotent: a blob already present is not sent again, and the same manifest bytes give
the same digest. Referrers work on every store: through the registry's referrers API when it has
one, else through the tag-schema fallback (an image index tagged ``sha256-<subject hex>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from forge_core.domain.oci import (
    Descriptor,
    FetchedManifest,
    Index,
    Manifest,
    OciError,
    OciNotFound,
    RegistryReference,
    fallback_tag,
)

__all__ = ["DEFAULT_MAX_BLOB_SIZE", "OciError", "OciNotFound", "OciStore", "RegistryReference"]

DEFAULT_MAX_BLOB_SIZE = 8 * 1024**3
"""The largest blob :meth:`OciStore.fetch_blob` accepts unless told otherwise (8 GiB)."""


class OciStore(Protocol):
    @property
    def location(self) -> str:
        """The registry host (``host:port``) or the layout root, for messages and references."""
        ...

    def blob_exists(self, repository: str, digest: str) -> bool: ...

    def push_blob(
        self,
        repository: str,
        content: Path | bytes,
        media_type: str,
        *,
        annotations: dict[str, str] | None = None,
        mount_from: Sequence[str] = (),
    ) -> Descriptor:
        """Store a blob (a file is streamed, never read whole) and return its descriptor.

        Skipped when the repository already has it; mounted from one of ``mount_from`` (other
        repositories of the same store) when one of them has it.
        """
        ...

    def push_manifest(
        self, repository: str, manifest: Manifest | Index | FetchedManifest, *, tags: Sequence[str] = ()
    ) -> Descriptor:
        """Store a manifest or index (every blob it names must be there) under its digest and ``tags``.

        A :class:`FetchedManifest` (copied from another store) is stored byte for byte, so its
        digest does not change; a document we build is stored in its canonical serialisation."""
        ...

    def resolve(self, repository: str, tag: str) -> Descriptor:
        """The descriptor a tag points at; :class:`OciNotFound` when there is no such tag."""
        ...

    def fetch_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """A manifest or index by tag or digest, its digest verified against its bytes."""
        ...

    def fetch_blob(
        self, repository: str, descriptor: Descriptor, destination: Path, *, max_size: int = DEFAULT_MAX_BLOB_SIZE
    ) -> Path:
        """Stream a blob to ``destination`` (written whole or not at all), size and digest verified."""
        ...

    def referrers(self, repository: str, subject: str, *, artifact_type: str | None = None) -> list[Descriptor]:
        """The manifests whose ``subject`` is the manifest ``subject`` (a digest), optionally of one type."""
        ...

    def attach_referrer(self, repository: str, manifest: Manifest, *, tags: Sequence[str] = ()) -> Descriptor:
        """Push a manifest that has a ``subject`` and make it listed among that subject's referrers."""
        ...


def layer(store: OciStore, repository: str, fetched: FetchedManifest, media_type: str, destination: Path) -> Path:
    """Fetch the one layer of ``media_type`` of a fetched image manifest, digest verified."""
    document = fetched.document
    matches = [d for d in document.layers if d.media_type == media_type] if isinstance(document, Manifest) else []
    if len(matches) != 1:
        raise OciNotFound(
            f"{len(matches)} layers of media type {media_type!r} in manifest {fetched.descriptor.digest}, expected one",
            registry=store.location,
            reference=f"{repository}@{fetched.descriptor.digest}",
        )
    return store.fetch_blob(repository, matches[0], destination)


def fallback_referrers(store: OciStore, repository: str, subject: str, artifact_type: str | None) -> list[Descriptor]:
    """The referrers of ``subject`` listed in its tag-schema fallback index (``sha256-<hex>``),
    where a store keeps them when there is no referrers API; none when there is no index."""
    try:
        fallback = store.fetch_manifest(repository, fallback_tag(subject)).document
    except OciNotFound:
        return []
    found = fallback.manifests if isinstance(fallback, Index) else []
    return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]
