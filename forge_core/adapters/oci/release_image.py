"""Pushing and reading Release OCI images (the format: :mod:`forge_core.domain.release_image`).

:func:`push_release_image` packs the rendered resource files and the release's facts, computes the
image's digest before sending anything, and pushes only when the tag ``<commit>`` is free: the
same digest already there is a no-op, a different one is refused (a release is immutable).
:func:`read_release_image` fetches an image by tag (``<commit>``, else ``sha-<commit>``) or digest
and verifies everything it reads: manifest and blob digests (the store checks them), media types,
the metadata's resources digest, commit and project against the reference, and the resources
layer through the safe archive reader.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from forge_core.adapters.archive import read_yaml_layer
from forge_core.adapters.oci import embedded_store, open_store
from forge_core.adapters.oci.archive import write_tar_gz
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.domain.gitops import release_image, release_image_tags
from forge_core.domain.oci import (
    EMPTY,
    EMPTY_JSON,
    Descriptor,
    FetchedManifest,
    LayoutReference,
    Manifest,
    OciNotFound,
    Reference,
    RegistryCredentials,
    canonical_json,
    parse_reference,
    sha256_digest,
)
from forge_core.domain.release_image import (
    METADATA,
    RESOURCES,
    ReleaseFacts,
    ReleaseImage,
    ReleaseImageConflict,
    ReleaseImageError,
    ReleaseMetadata,
    check_release_manifest,
    commit_of_tag,
    release_manifest,
    release_repository,
)
from forge_core.domain.resource_yaml import is_canonical
from forge_core.domain.resources import ArchiveLimits
from forge_core.ports.oci import OciStore
from forge_core.settings.oci import OciSettings
from forge_core.settings.release import ReleaseSettings

MAX_METADATA_BYTES = 4 * 1024 * 1024
"""A metadata layer larger than this is refused unread (a release has at most 1000 artifacts)."""


@dataclass(frozen=True)
class PushedReleaseImage:
    """Where a Release image is: its reference (``…:<commit>``), manifest digest, and whether this
    call sent it (False: the same image was already there)."""

    reference: str
    digest: str
    pushed: bool


def release_store(
    release: ReleaseSettings, oci: OciSettings, *, credentials: RegistryCredentials | None = None
) -> OciStore:
    """The store Release images go to: ``release.registry`` (with ``credentials`` when it asks for
    them), or the embedded layout folder."""
    if not release.registry:
        return embedded_store(oci)
    return open_store(parse_reference(f"{release.registry}/release"), oci, credentials=credentials)


def release_reference(store: OciStore, repository: str, project: str, commit: str) -> str:
    """The reference of a Release image in ``store``: ``<registry>/<name>/<project>:<commit>``, or for
    the embedded layout ``oci-layout:<folder>/<name>/<project>:<commit>``."""
    if isinstance(store, LayoutStore):
        return f"oci-layout:{Path(store.location) / release_repository(repository, project)}:{commit}"
    return release_image(store.location, repository, project, commit)


def push_release_image(store: OciStore, facts: ReleaseFacts, files: Mapping[str, bytes]) -> PushedReleaseImage:
    """Pack ``files`` (archive path → YAML bytes) with ``facts`` and push the image, tagged with the
    commit. Idempotent for the same inputs; an ReleaseImageConflict when the tag holds another image."""
    if not files:
        raise ReleaseImageError(f"project {facts.project} has no resources to release", where=facts.project)
    repository = release_repository(facts.repository, facts.project)
    tag = facts.commit
    with tempfile.TemporaryDirectory(prefix="forge-release-") as work:
        resources = write_tar_gz(Path(work) / "resources.tar.gz", dict(files)).read_bytes()
    resources_layer = Descriptor.of(resources, RESOURCES)
    # Files as the CMP prints them (resource_files writes them so) let it print their bytes as they are.
    canonical = all(is_canonical(data) for data in files.values())
    metadata = ReleaseMetadata(**facts.model_dump(), resources_digest=resources_layer.digest,
                               resources_canonical=canonical)
    metadata_bytes = metadata.to_json()
    manifest = release_manifest(metadata, Descriptor.of(metadata_bytes, METADATA), resources_layer)
    digest = sha256_digest(canonical_json(manifest))
    reference = release_reference(store, facts.repository, facts.project, tag)
    existing = _tagged(store, repository, tag)
    if existing is not None:
        if existing.digest == digest:
            return PushedReleaseImage(reference, digest, pushed=False)
        raise ReleaseImageConflict(
            f"tag {tag} of project {facts.project} already holds {existing.digest}, not this release's "
            f"{digest}: a Release image is never replaced",
            where=reference,
            details={"existing": existing.digest, "built": digest},
        )
    store.push_blob(repository, EMPTY_JSON, EMPTY)  # the config: a registry checks every blob named
    store.push_blob(repository, resources, RESOURCES)
    store.push_blob(repository, metadata_bytes, METADATA)
    pushed = store.push_manifest(repository, manifest, tags=[tag])
    return PushedReleaseImage(reference, pushed.digest, pushed=True)


def _tagged(store: OciStore, repository: str, tag: str) -> Descriptor | None:
    try:
        return store.resolve(repository, tag)
    except OciNotFound:
        return None


def read_release_image(
    store: OciStore, reference: str | Reference, *, limits: ArchiveLimits | None = None
) -> ReleaseImage:
    """The Release image ``reference`` names in ``store``, every digest and media type verified.

    ``reference`` is an image reference (``host/name/project:<commit>``, ``…:sha-<commit>``,
    ``…@sha256:…``, ``oci-layout:PATH:<commit>``): its repository path is read from ``store`` (as
    :func:`forge_core.adapters.oci.open_store` opens it for the reference). A ``<commit>`` tag that
    is missing is looked up as ``sha-<commit>`` too. Raises OciNotFound when there is no such image,
    ReleaseImageError (or the store's OciError, ArchiveError) when it is not a valid Release image.
    """
    parsed = parse_reference(reference) if isinstance(reference, str) else reference
    where = str(parsed)
    if parsed.target is None:
        raise ReleaseImageError("a Release image reference needs a tag (the commit) or a digest", where=where)
    limits = limits or ArchiveLimits()
    fetched = _fetch(store, parsed)
    manifest = fetched.document
    if not isinstance(manifest, Manifest):
        raise ReleaseImageError("is an image index, a Release image is one manifest", where=where)
    metadata_layer, resources_layer = check_release_manifest(manifest, where)
    with tempfile.TemporaryDirectory(prefix="forge-release-") as work:
        folder = Path(work)
        raw = store.fetch_blob(parsed.repository, metadata_layer, folder / "metadata.json",
                               max_size=MAX_METADATA_BYTES).read_bytes()
        try:
            metadata = ReleaseMetadata.model_validate_json(raw)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(top)"
            raise ReleaseImageError(f"metadata layer: {field}: {first['msg']}", where=where) from None
        _check_metadata(metadata, resources_layer, parsed, where)
        resources = store.fetch_blob(parsed.repository, resources_layer, folder / "resources.tar.gz",
                                     max_size=limits.max_total_bytes)
        with resources.open("rb") as stream:
            files = read_yaml_layer(stream, limits)
    return ReleaseImage(reference=where, digest=fetched.descriptor.digest, metadata=metadata,
                        files={file.name: file.data for file in files})


def _fetch(store: OciStore, parsed: Reference) -> FetchedManifest:
    """The manifest by digest, or by tag (a commit tag also as ``sha-<commit>``)."""
    if parsed.digest is not None:
        return store.fetch_manifest(parsed.repository, parsed.digest)
    assert parsed.tag is not None
    commit = commit_of_tag(parsed.tag)
    tags = release_image_tags(commit) if commit is not None else (parsed.tag,)
    for tag in tags[:-1]:
        try:
            return store.fetch_manifest(parsed.repository, tag)
        except OciNotFound:
            continue
    return store.fetch_manifest(parsed.repository, tags[-1])


def _check_metadata(metadata: ReleaseMetadata, resources: Descriptor, parsed: Reference, where: str) -> None:
    if metadata.resources_digest != resources.digest:
        raise ReleaseImageError(
            f"metadata names resources {metadata.resources_digest}, the manifest's layer is {resources.digest}",
            where=where,
        )
    commit = commit_of_tag(parsed.tag)
    if commit is not None and metadata.commit != commit:
        raise ReleaseImageError(f"tag names commit {commit}, the metadata commit {metadata.commit}", where=where)
    project = parsed.path.name if isinstance(parsed, LayoutReference) else parsed.repository.rsplit("/", 1)[-1]
    if metadata.project != project:
        raise ReleaseImageError(f"image of project {project!r} holds a release of {metadata.project!r}",
                                where=where)
