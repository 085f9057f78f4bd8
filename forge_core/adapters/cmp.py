"""The Argo CD Config Management Plugin's work: a deployment folder's ReleasePointer in, the YAML
Argo CD applies out.

:func:`generate` reads ``release.yaml`` (environment, repository and project from its labels, or
from the GitOps path — never by splitting names on hyphens), resolves the Release image of the
pointer's commit (tag ``<commit>``, else ``sha-<commit>``) to its manifest digest, and renders the
resources layer — read by :func:`~forge_core.adapters.oci.release_image.read_release_image`, which
verifies every digest and media type and extracts through the safe archive reader — sorted by
kind and name, then appends the folder's ``env.yaml`` (``env.yml`` accepted). Output is never
empty: a release without resources is an error, since Argo CD prunes whatever an empty output
leaves out.

A rendered release is cached by its manifest digest (:class:`RenderCache`, in
:mod:`forge_core.adapters.cmp_cache`): the same digest is the same bytes, so a run that misses only
the folder index resolves the tag, reads one verified file and prints. With
``verify_provenance`` each artifact's tracking image the release metadata names is checked on
every run, cached or not: it exists, it is a tracking image, and its digest is the one recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from forge_core.adapters.cmp_cache import RenderCache, Rendered, TrackedArtifact
from forge_core.adapters.oci.release_image import read_release_image, release_reference
from forge_core.domain.canonical_layer import print_canonical
from forge_core.domain.errors import ForgeError
from forge_core.domain.gitops import (
    ENV_FILES_ACCEPTED,
    POINTER_FILE,
    GitOpsError,
    ReleasePointer,
    env_file_name,
    location_from_path,
    parse_release_pointer,
    release_image_tags,
)
from forge_core.domain.oci import Manifest, OciError, OciNotFound, Reference, RegistryReference, parse_reference
from forge_core.domain.release_image import release_repository
from forge_core.domain.resources import (
    ArchiveError,
    ArchiveLimits,
    LayerFile,
    ResourceError,
    parse_resources,
    render_resources,
)
from forge_core.ports.oci import OciStore

__all__ = ["CmpError", "Generated", "RenderCache", "Rendered", "TrackedArtifact", "check_provenance",
           "discover", "env_documents", "generate", "pointer_path", "read_pointer"]

TRACKING_ARTIFACT_TYPE = "application/vnd.forge.artifact.tracking.v1"


class CmpError(ForgeError):
    """The plugin cannot render the folder; ``where`` names the file, image reference or layer."""

    code = "cmp_failed"


@dataclass(frozen=True)
class Generated:
    """What ``forge cmp generate`` prints (``text``), and where it came from."""

    text: str
    pointer: ReleasePointer
    reference: str
    digest: str
    from_cache: bool
    env: str = ""  # the env documents at the end of ``text``


def pointer_path(folder: Path, source_path: str | None = None) -> PurePosixPath | None:
    """Where the pointer sits in the GitOps repository, as far as that is known: Argo CD's source
    path (``ARGOCD_APP_SOURCE_PATH``), else the working folder when it is a deployment folder
    (``…/environments/<env>/<repository>-<project>``); None when neither says (the labels must)."""
    for candidate in (source_path, folder.resolve().as_posix()):
        if candidate:
            path = PurePosixPath(candidate) / POINTER_FILE
            try:
                location_from_path(path)
            except GitOpsError:
                continue
            return path
    return None


def read_pointer(folder: Path, source_path: str | None = None) -> ReleasePointer:
    """The ReleasePointer of ``folder``; errors name the file and the field."""
    file = folder / POINTER_FILE
    _refuse_link(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CmpError(f"no {POINTER_FILE} here: not a deployment folder", where=str(folder.resolve())) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CmpError(f"cannot read the pointer: {error}", where=str(file)) from None
    path = pointer_path(folder, source_path)
    try:
        return parse_release_pointer(text, path)
    except GitOpsError as error:
        if path is None:  # the domain named the bare file name; say which folder it is in
            raise GitOpsError(error.message, where=f"{folder.resolve()}/{error.where}") from None
        raise


def discover(folder: Path, source_path: str | None = None) -> ReleasePointer:
    """The pointer when ``folder`` holds a ``release.yaml`` that is a ReleasePointer; else the error."""
    return read_pointer(folder, source_path)


def generate(
    folder: Path,
    store: OciStore,
    cache: RenderCache,
    *,
    limits: ArchiveLimits | None = None,
    source_path: str | None = None,
    verify_provenance: bool = False,
    tracking_store: Callable[[Reference], OciStore] | None = None,
) -> Generated:
    """Everything Argo CD applies for the deployment folder ``folder``, as one YAML stream.

    ``store`` holds the Release images (the release registry, or the embedded layout folder);
    ``tracking_store`` opens the store of a tracking image reference (default: ``store``)."""
    pointer = read_pointer(folder, source_path)
    reference = release_reference(store, pointer.repository, pointer.project, pointer.release)
    repository = release_repository(pointer.repository, pointer.project)
    digest = _resolve(store, repository, pointer.release)
    rendered = cache.get(digest)
    from_cache = rendered is not None
    if rendered is None:
        # The image's path inside the store, pinned to the digest resolved (a layout store too).
        pinned = RegistryReference(store.location, repository, pointer.release, digest)
        rendered = _render(store, pinned, f"{reference}@{digest}", limits or ArchiveLimits())
        cache.put(digest, rendered)
    if verify_provenance:
        check_provenance(rendered.artifacts, tracking_store or (lambda _reference: store), f"{reference}@{digest}")
    env = env_documents(folder, limits or ArchiveLimits())
    return Generated(text=rendered.resources + env, pointer=pointer, reference=reference, digest=digest,
                     from_cache=from_cache, env=env)


def _resolve(store: OciStore, repository: str, commit: str) -> str:
    """The manifest digest of the release of ``commit``: tag ``<commit>``, else ``sha-<commit>``."""
    tags = release_image_tags(commit)
    for tag in tags:
        try:
            return store.resolve(repository, tag).digest
        except OciNotFound:
            continue
    raise OciNotFound(
        f"no Release image for commit {commit} (tags {' and '.join(tags)} are both missing)",
        registry=store.location,
        reference=f"{repository}:{commit}",
    )


def _render(store: OciStore, pinned: RegistryReference, reference: str, limits: ArchiveLimits) -> Rendered:
    try:
        image = read_release_image(store, pinned, limits=limits)
    except ArchiveError as error:
        raise CmpError(f"resources layer refused: {error}", where=reference, details=error.details) from None
    artifacts = tuple(
        TrackedArtifact(name=a.name, reference=a.tracking.reference, digest=a.tracking.digest)
        for a in image.metadata.artifacts
    )
    # A canonical layer (each file one resource as the CMP prints it) is printed as it is; the
    # cold path of forge_core.adapters.cmp_cold prints it by the same rule, so both agree.
    if image.metadata.resources_canonical:
        printed = print_canonical(list(image.files.items()))
        if printed is not None:
            return Rendered(printed, artifacts)
    layer = f"{reference} resources layer {image.metadata.resources_digest}"
    try:
        resources = parse_resources(LayerFile(name=name, data=data) for name, data in image.files.items())
    except ResourceError as error:
        raise CmpError(str(error), where=layer, details={"file": error.where}) from None
    if not resources:
        raise CmpError(
            "holds no Kubernetes objects; refusing to print nothing, as Argo CD would prune every "
            "resource of the application",
            where=layer,
        )
    return Rendered(render_resources(resources), artifacts)


def check_provenance(
    artifacts: Sequence[TrackedArtifact], open_store: Callable[[Reference], OciStore], release: str
) -> None:
    """Each artifact's tracking image exists, is a tracking image, and has the recorded digest.

    Signatures are not checked here yet: the tracking image's signed provenance arrives with the
    tracking-image work."""
    for artifact in artifacts:
        where = f"{release}: artifact {artifact.name!r} tracking image {artifact.reference}"
        try:
            parsed = parse_reference(artifact.reference)
            if parsed.target is None:
                raise CmpError("the tracking reference has neither tag nor digest", where=where)
            fetched = open_store(parsed).fetch_manifest(parsed.repository, parsed.target)
        except OciNotFound:
            raise CmpError("does not exist", where=where) from None
        except OciError as error:
            raise CmpError(f"cannot be read: {error}", where=where) from None
        if fetched.descriptor.digest != artifact.digest:
            raise CmpError(
                f"has digest {fetched.descriptor.digest}, the release recorded {artifact.digest}", where=where
            )
        document = fetched.document
        kind = document.artifact_type if isinstance(document, Manifest) else "an image index"
        if kind != TRACKING_ARTIFACT_TYPE:
            raise CmpError(f"is {kind!r}, not a tracking image ({TRACKING_ARTIFACT_TYPE})", where=where)


def env_documents(folder: Path, limits: ArchiveLimits) -> str:
    """The folder's ``env.yaml`` (or ``env.yml``) as YAML documents to append; empty when absent."""
    name = env_file_name({n for n in ENV_FILES_ACCEPTED if (folder / n).is_file()})
    if name is None:
        return ""
    file = folder / name
    _refuse_link(file)
    if file.stat().st_size > limits.max_file_bytes:
        raise CmpError(f"larger than {limits.max_file_bytes} bytes", where=str(file))
    try:
        documents = parse_resources([LayerFile(name=str(file), data=file.read_bytes())])
    except ResourceError as error:
        raise CmpError(error.message, where=error.where) from None
    return render_resources(documents) if documents else ""


def _refuse_link(file: Path) -> None:
    # The folder is a checkout of a repository anyone with push access shapes: a link could make
    # the plugin read (and quote in an error) a file of the sidecar, such as a mounted secret.
    if file.is_symlink():
        raise CmpError("is a symbolic link; the pointer and env files must be regular files", where=str(file))
