"""The ``docker`` publisher: copies a container artifact's OCI image layout to a registry, no daemon.

A ``container`` artifact arrives as an OCI image layout folder named by its ``reference``:
``oci-layout:PATH[:tag]`` (skopeo's ``oci:PATH[:tag]`` too); without a tag the layout must hold
exactly one image. It goes to ``<registry>/<namespace>/<repository>`` (the repository defaults to
the artifact's name) under these tags:

- ``sha-<40 hex commit>``: immutable;
- the release version, from ``metadata["version"]`` or else the git tag in ``metadata["tag"]``
  (``api/v1.2.0`` → ``1.2.0``): immutable;
- the target's ``aliases`` (``latest``, …): the only tags that move.

An immutable tag already pointing at another digest is refused before anything is sent. Blobs the
repository has are skipped, blobs one of ``mountFrom`` has are mounted, the rest are streamed from
the layout; an image index is copied whole (every platform's manifest), each manifest byte for
byte, and the registry must serve the layout's bytes (so its digest) under every tag.
Credentials: ``ctx.secrets["default"]`` (``repo.cue``'s one reference) as ``user:password`` or a
token alone, or ``username`` and ``password``: :func:`forge_core.sdk.login_from_secrets`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    FetchedManifest,
    Index,
    LayoutReference,
    OciDigestMismatch,
    OciError,
    OciNotFound,
    OciSettings,
    OciStore,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
    RegistryReference,
    WorkWithdrawn,
    open_store,
    parse_reference,
)
from forge_docker.credentials import registry_credentials
from forge_docker.settings import DockerTargetSettings

_COMMIT = re.compile(r"[0-9a-f]{40}")
_VERSION_PREFIX = re.compile(r"^v(?=\d)")


class TagConflict(OciError):
    """An immutable tag of the target already names a different image."""

    code = "docker_tag_conflict"


@dataclass(frozen=True)
class ImagePlan:
    """Where an artifact's image goes: computed from the artifact, the target and the local layout."""

    registry: str
    repository: str
    digest: str
    immutable: tuple[str, ...]
    moving: tuple[str, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        return (*self.immutable, *self.moving)

    @property
    def reference(self) -> str:
        """``<registry>/<repository>:<version or sha tag>@<digest>``: the primary, pinned reference."""
        return f"{self.registry}/{self.repository}:{self.immutable[-1]}@{self.digest}"

    def location(self, target: PublishTarget, *, planned: bool) -> PublishedLocation:
        return PublishedLocation(
            publisher=target.name,
            type=target.type,
            uri=self.reference,
            digest=self.digest,
            metadata={
                "registry": self.registry,
                "repository": self.repository,
                "tags": list(self.tags),
                "planned": planned,
            },
        )


@dataclass(frozen=True)
class _Source:
    """The artifact's image in its layout: the store, the layout's folder name, the root manifest."""

    store: OciStore
    repository: str
    folder: Path
    root: FetchedManifest


class DockerPublisher:
    def plan(self, artifact: ProducedArtifact, target: PublishTarget) -> PublishedLocation:
        """The location ``publish`` would return, without contacting the registry."""
        settings = DockerTargetSettings.model_validate(target.settings)
        return _plan(artifact, target, settings, _source(artifact)).location(target, planned=True)

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        _check_stop(ctx, target.name)
        settings = DockerTargetSettings.model_validate(target.settings)
        source = _source(artifact)
        plan = _plan(artifact, target, settings, source)
        store = open_store(
            RegistryReference(plan.registry, plan.repository),
            OciSettings(insecure_registries=[plan.registry] if settings.insecure else []),
            credentials=registry_credentials(ctx.secrets, where=f"docker target {target.name!r}"),
        )
        try:
            _refuse_moved_tags(store, plan)
            if all(_points_at(store, plan, tag) for tag in plan.tags):
                ctx.log(f"docker: {plan.reference} already published, nothing to send")
            else:
                ctx.log(
                    f"docker: publishing {artifact.name} to {plan.registry}/{plan.repository} as {', '.join(plan.tags)}"
                )
                copier = _Copier(source, store, plan.repository, settings.mount_from, ctx, target.name)
                for child in _children(source):
                    copier.manifest(child)
                copier.blobs(source.root)
                _check_stop(ctx, target.name)
                store.push_manifest(plan.repository, source.root, tags=plan.tags)
            _check_round_trip(store, plan, source.root)
        finally:
            close: Callable[[], None] | None = getattr(store, "close", None)
            if close is not None:
                close()
        ctx.log(f"docker: published {plan.reference}")
        return plan.location(target, planned=False)


# --- what goes where ------------------------------------------------------------------------------


def _source(artifact: ProducedArtifact) -> _Source:
    where = f"artifact {artifact.name!r} of project {artifact.project!r}"
    if not artifact.reference:
        raise ConfigurationError(
            "a container artifact needs reference='oci-layout:PATH[:tag]' (its OCI image layout)", where=where
        )
    reference = parse_reference(artifact.reference)
    if not isinstance(reference, LayoutReference):
        raise ConfigurationError(
            f"reference {artifact.reference!r} is not an OCI image layout: expected 'oci-layout:PATH[:tag]'",
            where=where,
        )
    if not reference.path.is_absolute():
        raise ConfigurationError(f"the layout path {str(reference.path)!r} must be absolute", where=where)
    if not (reference.path / "oci-layout").is_file():
        raise ConfigurationError(f"{reference.path} is not an OCI image layout (no oci-layout file)", where=where)
    store = open_store(reference)
    root = store.fetch_manifest(reference.repository, reference.target or _only_image(reference, where))
    if artifact.digest and artifact.digest != root.descriptor.digest:
        raise OciDigestMismatch(
            f"the layout holds {root.descriptor.digest}, the artifact says {artifact.digest}",
            registry=store.location,
            reference=str(reference),
        )
    return _Source(store, reference.repository, reference.path, root)


def _only_image(reference: LayoutReference, where: str) -> str:
    """The digest of the one image of an untagged layout reference."""
    index = Index.model_validate_json((reference.path / "index.json").read_bytes())
    digests = sorted({entry.digest for entry in index.manifests})
    if len(digests) != 1:
        names = sorted(
            (entry.annotations or {}).get("org.opencontainers.image.ref.name", "") for entry in index.manifests
        )
        raise ConfigurationError(
            f"{reference.path} holds {len(digests)} images: name one as 'oci-layout:PATH:tag' "
            f"(tags: {', '.join(n for n in names if n) or 'none'})",
            where=where,
        )
    return digests[0]


def _plan(
    artifact: ProducedArtifact, target: PublishTarget, settings: DockerTargetSettings, source: _Source
) -> ImagePlan:
    where = f"docker target {target.name!r}, artifact {artifact.name!r}"
    if not _COMMIT.fullmatch(artifact.commit):
        raise ConfigurationError(f"commit {artifact.commit!r} is not 40 lower-case hex digits", where=where)
    repository = "/".join(part for part in (settings.namespace, settings.repository or artifact.name) if part)
    immutable = [f"sha-{artifact.commit}"]
    version = release_version(artifact.metadata)
    if version and version not in immutable:
        immutable.append(version)
    moving = [alias for alias in dict.fromkeys(settings.aliases) if alias not in immutable]
    for tag in (*immutable, *moving):
        parse_reference(f"{settings.registry}/{repository}:{tag}")  # names what is malformed, and where
    return ImagePlan(settings.registry, repository, source.root.descriptor.digest, tuple(immutable), tuple(moving))


def release_version(metadata: dict[str, object]) -> str | None:
    """``metadata["version"]``, else the version in the git tag ``metadata["tag"]``:
    the last path part without a leading ``v`` (``api/v1.2.0`` → ``1.2.0``)."""
    version, tag = metadata.get("version"), metadata.get("tag")
    if version:
        return str(version)
    if not tag:
        return None
    return _VERSION_PREFIX.sub("", str(tag).rsplit("/", 1)[-1]) or None


# --- the registry ---------------------------------------------------------------------------------


def _points_at(store: OciStore, plan: ImagePlan, tag: str) -> bool:
    try:
        return store.resolve(plan.repository, tag).digest == plan.digest
    except OciNotFound:
        return False


def _refuse_moved_tags(store: OciStore, plan: ImagePlan) -> None:
    """Refuse before anything is sent when an immutable tag already names another image."""
    for tag in plan.immutable:
        try:
            current = store.resolve(plan.repository, tag).digest
        except OciNotFound:
            continue
        if current != plan.digest:
            raise TagConflict(
                f"tag {tag!r} already points at {current}, not {plan.digest}; it is immutable "
                "(only the target's aliases move)",
                registry=plan.registry,
                reference=f"{plan.repository}:{tag}",
            )


def _check_round_trip(store: OciStore, plan: ImagePlan, root: FetchedManifest) -> None:
    """What the registry serves under each tag is the layout's manifest, byte for byte."""
    for tag in plan.tags:
        served = store.fetch_manifest(plan.repository, tag)
        if served.raw != root.raw:
            raise OciDigestMismatch(
                f"the registry serves {served.descriptor.digest} for {tag!r}, the layout holds {plan.digest}",
                registry=plan.registry,
                reference=f"{plan.repository}:{tag}",
            )


def _children(source: _Source) -> list[FetchedManifest]:
    """Every manifest an index names, fetched from the layout (an index is copied whole)."""
    document = source.root.document
    if not isinstance(document, Index):
        return []
    return [source.store.fetch_manifest(source.repository, entry.digest) for entry in document.manifests]


class _Copier:
    """Copies blobs and manifests from the layout to the registry, checking ``stop`` between each."""

    def __init__(
        self,
        source: _Source,
        store: OciStore,
        repository: str,
        mount_from: list[str],
        ctx: ExecutionContext,
        target: str,
    ) -> None:
        self._source, self._store, self._repository = source, store, repository
        self._mount_from, self._ctx, self._target = mount_from, ctx, target

    def manifest(self, fetched: FetchedManifest) -> None:
        self.blobs(fetched)
        _check_stop(self._ctx, self._target)
        self._store.push_manifest(self._repository, fetched)

    def blobs(self, fetched: FetchedManifest) -> None:
        """The config and layers of an image manifest (an index has none of its own)."""
        document = fetched.document
        if isinstance(document, Index):
            return
        for blob in [document.config, *document.layers]:
            _check_stop(self._ctx, self._target)
            self._blob(blob.digest, blob.media_type)

    def _blob(self, digest: str, media_type: str) -> None:
        where = f"{self._store.location}/{self._repository}"
        if self._store.blob_exists(self._repository, digest):
            self._ctx.log(f"docker: {digest} already in {where}")
            return
        mount = next((r for r in self._mount_from if self._store.blob_exists(r, digest)), None)
        path = self._source.folder / "blobs" / "sha256" / digest.removeprefix("sha256:")
        if not path.is_file():
            raise OciNotFound(
                "the layout lacks a blob its manifest names", registry=str(self._source.folder), reference=digest
            )
        pushed = self._store.push_blob(self._repository, path, media_type, mount_from=[mount] if mount else [])
        if pushed.digest != digest:
            raise OciDigestMismatch(
                f"the layout's blob file hashes to {pushed.digest}", registry=str(self._source.folder), reference=digest
            )
        self._ctx.log(f"docker: {digest} mounted from {mount}" if mount else f"docker: {digest} uploaded to {where}")


def _check_stop(ctx: ExecutionContext, target: str) -> None:
    if ctx.stop.is_set():
        raise WorkWithdrawn("publish withdrawn before it finished; no tag was set", where=f"docker target {target!r}")
