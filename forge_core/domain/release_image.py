"""The Release OCI image: what a release is, packaged as an immutable OCI 1.1 artifact.

``<release-registry>/<repository name>/<project>:<40-hex commit>`` (readers also accept
``sha-<commit>``) holds an image manifest with ``artifactType`` :data:`ARTIFACT_TYPE`, the empty
config and two layers, found by media type (never by position):

- :data:`METADATA` — :class:`ReleaseMetadata` as canonical JSON: release number, aliases, trigger,
  repository (``owner/name``), project, commit, every artifact's tracking image reference and
  digest and its primary published location, and the resources layer's digest;
- :data:`RESOURCES` — a reproducible tar.gz of the rendered resources, **one ``.yaml`` file per
  resource**, named ``<position>-<kind>-<name>.yaml`` in the renderer's order (kind, name,
  namespace), so a file name says what it holds and sorting the names keeps the order. Each file
  is the resource as the CMP prints it (keys sorted; metadata ``resources_canonical``), so the
  plugin prints the files' bytes after checking them instead of writing the YAML again.

Nothing in the image depends on when it was built: the manifest's ``created`` annotation is the
commit's time, archive entries have mtime 0 and uid/gid 0, gzip has mtime 0. The same release at
the same commit therefore always has the same digest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator

from forge_core.domain import triggers
from forge_core.domain.errors import ForgeError
from forge_core.domain.gitops import COMMIT, FullCommit, release_image_tags, repository_name
from forge_core.domain.models import Model
from forge_core.domain.oci import EMPTY, Descriptor, Manifest, canonical_json
from forge_core.domain.resource_yaml import render_one

ARTIFACT_TYPE = "application/vnd.forge.release.v1"
METADATA = "application/vnd.forge.release.metadata.v1+json"
RESOURCES = "application/vnd.forge.resources.v1.tar+gzip"
METADATA_VERSION = 1

CREATED = "org.opencontainers.image.created"
REVISION = "org.opencontainers.image.revision"
_PREFIX = "forge.projectcatalyst.io/"
REPOSITORY_ANNOTATION = _PREFIX + "repository"
PROJECT_ANNOTATION = _PREFIX + "project"
RELEASE_NUMBER_ANNOTATION = _PREFIX + "release-number"

_FILE_PART = re.compile(r"[^a-z0-9.-]+")


class ReleaseImageError(ForgeError):
    """A Release image that cannot be built, or one read back that is not what it claims to be."""

    code = "invalid_release_image"


class ReleaseImageConflict(ReleaseImageError):
    """The tag of a release's commit already holds another image: a Release image is never replaced."""

    code = "release_image_conflict"
    exit_code = 4


class TrackingRef(Model):
    """An artifact's tracking image: its reference and its manifest digest."""

    reference: str
    digest: str


class PrimaryLocation(Model):
    """Where an artifact's primary publisher put it, with the digest of what is there."""

    uri: str
    digest: str


class ReleaseArtifactRef(Model):
    """One artifact of a release, as the metadata layer records it."""

    name: str
    type: str
    tracking: TrackingRef
    primary: PrimaryLocation


class ReleaseTriggerInfo(Model):
    """What released the commit: ``branch_push``, ``tag`` or ``manual``, with the branch or tag."""

    type: str
    branch: str | None = None
    tag: str | None = None


class ReleaseFacts(Model):
    """What a release is, before it is packaged: the metadata layer without the resources digest."""

    version: int = METADATA_VERSION
    repository: str
    project: str
    commit: FullCommit
    release_number: int = Field(ge=1)
    aliases: tuple[str, ...] = ()
    trigger: ReleaseTriggerInfo
    artifacts: tuple[ReleaseArtifactRef, ...] = ()
    created: datetime

    @field_validator("created")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created needs a time zone")
        return value.astimezone(UTC).replace(microsecond=0)


class ReleaseMetadata(ReleaseFacts):
    """The metadata layer's content: the facts and ``resources_digest``, the resources layer's digest."""

    resources_digest: str
    resources_canonical: bool = False
    """True (what the writer sets): each file of the resources layer is one resource as the CMP
    prints it (:func:`~forge_core.domain.resource_yaml.render_one`), so the CMP prints the files'
    bytes in its order rather than writing them again. False (older or foreign images): the CMP
    writes every document again."""

    def to_json(self) -> bytes:
        """The one serialisation written (compact, fields in order): same metadata, same bytes."""
        return canonical_json(self.model_dump(mode="json"))


class ReleaseImage(Model):
    """A Release image read back and verified: its manifest digest, metadata and resource files
    (archive path → bytes, sorted by path)."""

    reference: str
    digest: str
    metadata: ReleaseMetadata
    files: dict[str, bytes]


def release_repository(repository: str, project: str) -> str:
    """The image repository of a project's releases: ``<repository name>/<project>``."""
    return f"{repository_name(repository)}/{project}"


def resource_files(manifests: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """One YAML file per rendered manifest, in the given (renderer's) order, named so that their
    sorted names keep that order: ``0001-deployment-api.yaml``. Each holds the manifest as the CMP
    prints it (keys sorted), which the metadata's ``resources_canonical`` says."""
    files: dict[str, bytes] = {}
    for position, manifest in enumerate(manifests, start=1):
        metadata = manifest.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        kind = _FILE_PART.sub("-", str(manifest.get("kind", "resource")).lower()).strip("-")
        label = _FILE_PART.sub("-", str(name or "unnamed").lower()).strip("-")
        files[f"{position:04d}-{kind}-{label}.yaml"] = render_one(manifest).encode()
    return files


def created_annotation(moment: datetime) -> str:
    """RFC 3339 in UTC to the second: the commit's time, never the build's."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_manifest(metadata: ReleaseMetadata, metadata_layer: Descriptor, resources_layer: Descriptor) -> Manifest:
    """The Release image's manifest: the empty config, the metadata then the resources layer."""
    if metadata_layer.media_type != METADATA or resources_layer.media_type != RESOURCES:
        raise ReleaseImageError("the layers of a Release image are its metadata and its resources",
                                where="layers")
    if metadata.resources_digest != resources_layer.digest:
        raise ReleaseImageError(
            f"metadata names resources {metadata.resources_digest}, the layer is {resources_layer.digest}",
            where="resources_digest",
        )
    return Manifest(
        artifact_type=ARTIFACT_TYPE,
        layers=[metadata_layer, resources_layer],
        annotations={
            CREATED: created_annotation(metadata.created),
            REVISION: metadata.commit,
            REPOSITORY_ANNOTATION: metadata.repository,
            PROJECT_ANNOTATION: metadata.project,
            RELEASE_NUMBER_ANNOTATION: str(metadata.release_number),
        },
    )


def check_release_manifest(manifest: Manifest, where: str) -> tuple[Descriptor, Descriptor]:
    """The metadata and resources layers of a Release image manifest; ReleaseImageError naming
    ``where`` when the manifest is not one (wrong artifact type or config, a layer missing or twice)."""
    if manifest.artifact_type != ARTIFACT_TYPE:
        raise ReleaseImageError(
            f"artifactType is {manifest.artifact_type!r}, a Release image has {ARTIFACT_TYPE!r}", where=where
        )
    if manifest.config.media_type != EMPTY:
        raise ReleaseImageError(f"config is {manifest.config.media_type!r}, a Release image has {EMPTY!r}",
                                where=where)
    layers = []
    for media_type in (METADATA, RESOURCES):
        found = [layer for layer in manifest.layers if layer.media_type == media_type]
        if len(found) != 1:
            raise ReleaseImageError(f"{len(found)} layers of media type {media_type}, a Release image has one",
                                    where=where)
        layers.append(found[0])
    return layers[0], layers[1]


def commit_of_tag(tag: str | None) -> str | None:
    """The commit a Release image tag names (``<commit>`` or ``sha-<commit>``), None for another tag."""
    if tag is None:
        return None
    commit = tag.removeprefix("sha-")
    return commit if COMMIT.match(commit) and tag in release_image_tags(commit) else None


def tag_version(tag: str) -> str | None:
    """The version a release tag names, by the tagging rules of the triggers: ``api/v1.2.0`` →
    ``1.2.0`` (monorepo), ``v2.0.0`` → ``2.0.0`` (tag-all); None when it names none."""
    project, slash, _ = tag.rpartition("/")
    return triggers.tag_version(tag, project if slash else None, "monorepo" if slash else "tag-all")


def release_aliases(
    number: int, *, tag: str | None, branch: str | None, custom: Iterable[str] = (), version: str | None = None
) -> tuple[tuple[str, str], ...]:
    """A release's aliases as (alias, type), each once, in this order: the number (``42``); the tag
    as written and its version (``api/v1.2.0``, ``1.2.0``; ``version`` overrides the one read from the
    tag); the branch and number (``main-42``); then the project's custom ones."""
    found: dict[str, str] = {str(number): "numeric"}
    if tag:
        found.setdefault(tag, "tag")
        if (version := version or tag_version(tag)) is not None:
            found.setdefault(version.replace("+", "_"), "tag")  # '+' (build metadata) is not allowed in an alias
    if branch:
        found.setdefault(f"{branch}-{number}", "branch")
    for alias in custom:
        found.setdefault(alias, "custom")
    return tuple(found.items())
