"""CycloneDX 1.6 SBOMs of artifacts (cyclonedx-python-lib), the same bytes for the same inputs.

Per artifact type: a ``python`` distribution lists the wheel's real dependencies (its
``Requires-Dist``) with the distribution itself as the metadata component; a ``container`` lists
the files of its layers (SHA-256, whiteouts applied) and the packages found in them (dpkg
``var/lib/dpkg/status``, Python ``*.dist-info/METADATA``, apk ``lib/apk/db/installed``), read
from the layer tars as streams through the OCI store port, never extracted; anything else lists
its files with their SHA-256. The serial number is derived from the artifact digest (uuid5) and
the timestamp is the one given, so the SBOM of an artifact is reproducible.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from forge_core.domain.models import ProducedArtifact
from forge_core.domain.oci import Index, Manifest, OciError
from forge_core.domain.tracking import TrackingError
from forge_core.ports.oci import OciStore

SERIAL_NAMESPACE = uuid.UUID("6f0c4a52-2f7e-5d7b-9a5e-6b1f3f3e7a10")
PACKAGE_DB_LIMIT = 64 * 1024**2  # a package database larger than this is not read (it is still hashed)
MAX_LAYER_ENTRIES = 1_000_000
_CHUNK = 1024**2

_DPKG_STATUS = "var/lib/dpkg/status"
_APK_INSTALLED = "lib/apk/db/installed"


@dataclass(frozen=True)
class ImageSource:
    """Where a container artifact's image is: a store, the repository in it, a tag or digest."""

    store: OciStore
    repository: str
    reference: str


# --- entry points ------------------------------------------------------------------------------------


def artifact_sbom(
    artifact: ProducedArtifact, *, digest: str, timestamp: datetime, image: ImageSource | None = None
) -> bytes:
    """The SBOM of a produced artifact, by its type (``image`` is required for a container)."""
    if artifact.type == "container":
        if image is None:
            raise TrackingError(
                "a container's SBOM needs its image (store, repository, reference)", where=artifact.name
            )
        return container_sbom(image, name=artifact.name, digest=digest, timestamp=timestamp)
    if artifact.type == "python":
        return python_sbom(artifact.files, name=artifact.name, digest=digest, timestamp=timestamp)
    kind = ComponentType.APPLICATION if artifact.type == "binary" else ComponentType.FILE
    return files_sbom(artifact.files, name=artifact.name, digest=digest, timestamp=timestamp, kind=kind)


def files_sbom(
    files: Sequence[Path], *, name: str, digest: str, timestamp: datetime, kind: ComponentType = ComponentType.FILE
) -> bytes:
    """An artifact made of files: each with its SHA-256."""
    root = Component(name=name, type=kind, bom_ref=f"artifact:{name}", hashes=[_sha256(digest)])
    components = [_file_component(path.name, _hash_file(path)) for path in files]
    return _serialise(root, components, digest, timestamp, depends_on=components)


def python_sbom(files: Sequence[Path], *, name: str, digest: str, timestamp: datetime) -> bytes:
    """A Python distribution: the wheel's ``Requires-Dist`` (extras and markers kept as properties)."""
    wheels = sorted(path for path in files if path.suffix == ".whl")
    if not wheels:
        raise TrackingError("a python artifact's SBOM needs a wheel (.whl) among its files", where=name)
    headers = _wheel_metadata(wheels[0])
    dist_name, version = headers.get("Name", name), headers.get("Version", "")
    root = Component(
        name=dist_name,
        version=version or None,
        type=ComponentType.LIBRARY,
        bom_ref=f"pkg:pypi/{canonicalize_name(dist_name)}@{version}",
        purl=PackageURL("pypi", name=canonicalize_name(dist_name), version=version or None),
        hashes=[_sha256(digest)],
    )
    components = [_file_component(path.name, _hash_file(path)) for path in files]
    dependencies = []
    for line in headers.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise TrackingError(
                f"unreadable Requires-Dist {line!r}: {exc}", where=f"{wheels[0].name}: METADATA"
            ) from None
        properties = [Property(name="forge:requirement", value=str(requirement))]
        package = canonicalize_name(requirement.name)
        dependencies.append(
            Component(
                name=requirement.name,
                type=ComponentType.LIBRARY,
                bom_ref=f"pkg:pypi/{package}#{requirement}",
                purl=PackageURL("pypi", name=package),
                properties=properties,
            )
        )
    return _serialise(root, components + dependencies, digest, timestamp, depends_on=dependencies or components)


def container_sbom(image: ImageSource, *, name: str, digest: str, timestamp: datetime) -> bytes:
    """A container image: its files (whiteouts applied, per platform for an index) and packages."""
    root = Component(name=name, type=ComponentType.CONTAINER, bom_ref=f"artifact:{name}", hashes=[_sha256(digest)])
    components: dict[str, Component] = {}
    for platform, manifest in _image_manifests(image):
        files, packages = _read_layers(image, manifest)
        for path, sha in sorted(files.items()):
            component = _file_component(path, sha)
            if platform:
                component.properties.add(Property(name="forge:platform", value=platform))
            components.setdefault(f"{platform}:{path}", component)
        for package in packages:
            components.setdefault(str(package.bom_ref.value), package)
    everything = list(components.values())
    packages = [c for c in everything if c.type is ComponentType.LIBRARY]
    return _serialise(root, everything, digest, timestamp, depends_on=packages or everything)


# --- reading SBOMs back -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SbomSummary:
    spec_version: str
    components: int
    files: int
    packages: tuple[str, ...]  # "name@version" of the library components, sorted
    root: str


def summarise_sbom(data: dict[str, Any], *, top: int = 10) -> SbomSummary:
    components = [c for c in data.get("components", []) if isinstance(c, dict)]
    libraries = sorted(
        f"{c.get('name')}@{c['version']}" if c.get("version") else str(c.get("name"))
        for c in components
        if c.get("type") == "library"
    )
    root = data.get("metadata", {}).get("component", {})
    return SbomSummary(
        spec_version=str(data.get("specVersion", "")),
        components=len(components),
        files=sum(1 for c in components if c.get("type") == "file"),
        packages=tuple(libraries[:top]),
        root=f"{root.get('name', '')}" + (f"@{root['version']}" if root.get("version") else ""),
    )


# --- helpers ------------------------------------------------------------------------------------------


def _serialise(
    root: Component,
    components: Iterable[Component],
    digest: str,
    timestamp: datetime,
    *,
    depends_on: Sequence[Component] = (),
) -> bytes:
    bom = Bom(
        serial_number=uuid.uuid5(SERIAL_NAMESPACE, digest),
        metadata=BomMetaData(component=root, timestamp=timestamp),
        components=components,
    )
    if depends_on:
        bom.register_dependency(root, depends_on)
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()


def _sha256(digest: str) -> HashType:
    return HashType(alg=HashAlgorithm.SHA_256, content=digest.removeprefix("sha256:"))


def _file_component(path: str, sha: str) -> Component:
    return Component(
        name=path,
        type=ComponentType.FILE,
        bom_ref=f"file:{path}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)],
    )


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise TrackingError(f"cannot read the artifact file: {exc.strerror}", where=str(path)) from None
    return digest.hexdigest()


def _wheel_metadata(wheel: Path) -> Any:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise TrackingError(f"{len(names)} *.dist-info/METADATA files, expected one", where=wheel.name)
            info = archive.getinfo(names[0])
            if info.file_size > PACKAGE_DB_LIMIT:
                raise TrackingError("METADATA larger than 64 MiB", where=f"{wheel.name}: {names[0]}")
            return BytesHeaderParser().parsebytes(archive.read(names[0]))
    except (zipfile.BadZipFile, OSError) as exc:
        raise TrackingError(f"not a readable wheel: {exc}", where=wheel.name) from None


def _image_manifests(image: ImageSource) -> Iterator[tuple[str, Manifest]]:
    """The image's manifest, or each platform manifest of an index (platform as ``os/arch``)."""
    try:
        fetched = image.store.fetch_manifest(image.repository, image.reference)
        document = fetched.document
        if isinstance(document, Manifest):
            yield "", document
            return
        assert isinstance(document, Index)
        for entry in document.manifests:
            child = image.store.fetch_manifest(image.repository, entry.digest).document
            if isinstance(child, Manifest):
                platform = f"{entry.platform.os}/{entry.platform.architecture}" if entry.platform else entry.digest
                yield platform, child
    except OciError as exc:
        raise TrackingError(
            f"cannot read the image for its SBOM: {exc}", where=f"{image.repository}:{image.reference}"
        ) from None


def _read_layers(image: ImageSource, manifest: Manifest) -> tuple[dict[str, str], list[Component]]:
    """The image's files (path → sha256 hex) after applying every layer, and its packages."""
    files: dict[str, str] = {}
    databases: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="forge-sbom-") as folder:
        for number, descriptor in enumerate(manifest.layers):
            where = f"{image.repository}@{descriptor.digest} (layer {number})"
            try:
                blob = image.store.fetch_blob(image.repository, descriptor, Path(folder) / "layer")
            except OciError as exc:
                raise TrackingError(f"cannot read the layer: {exc}", where=where) from None
            with blob.open("rb") as stream:
                _apply_layer(stream, files, databases, where)
            blob.unlink()
    packages: list[Component] = []
    for path, content in sorted(databases.items()):
        if path not in files:  # deleted by a later layer
            continue
        if path == _DPKG_STATUS:
            packages.extend(_dpkg_packages(content))
        elif path == _APK_INSTALLED:
            packages.extend(_apk_packages(content))
        else:
            packages.extend(_python_package(content))
    return files, packages


def _is_database(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return path in (_DPKG_STATUS, _APK_INSTALLED) or (
        len(parts) >= 2 and parts[-1] == "METADATA" and parts[-2].endswith(".dist-info")
    )


def _apply_layer(stream: IO[bytes], files: dict[str, str], databases: dict[str, bytes], where: str) -> None:
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_LAYER_ENTRIES:
                    raise TrackingError(f"more than {MAX_LAYER_ENTRIES} entries", where=where)
                path = "/".join(p for p in PurePosixPath(member.name).parts if p not in (".", "/"))
                parent, _, base = path.rpartition("/")
                if base == ".wh..wh..opq":  # opaque directory: what earlier layers put there is gone
                    for known in [k for k in files if k.startswith(parent + "/")]:
                        del files[known]
                    continue
                if base.startswith(".wh."):
                    gone = f"{parent}/{base[4:]}" if parent else base[4:]
                    for known in [k for k in files if k == gone or k.startswith(gone + "/")]:
                        del files[known]
                    continue
                if not member.isreg():
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                digest = hashlib.sha256()
                keep = _is_database(path) and member.size <= PACKAGE_DB_LIMIT
                content = bytearray()
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    if keep:
                        content += chunk
                files[path] = digest.hexdigest()
                if keep:
                    databases[path] = bytes(content)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TrackingError(f"unreadable layer tar: {exc}", where=where) from None


def _stanzas(content: bytes, separator: str) -> Iterator[dict[str, str]]:
    """RFC 822-like paragraphs (dpkg's ``Key: value``, apk's ``K:value``), blank-line separated."""
    for paragraph in content.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line[:1] in (" ", "\t") or separator not in line:
                continue  # continuation lines (descriptions) are not needed
            key, _, value = line.partition(separator)
            fields.setdefault(key.strip(), value.strip())
        if fields:
            yield fields


def _dpkg_packages(content: bytes) -> Iterator[Component]:
    for fields in _stanzas(content, ":"):
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version or "installed" not in fields.get("Status", "installed").split():
            continue
        qualifiers = {"arch": fields["Architecture"]} if fields.get("Architecture") else None
        purl = PackageURL("deb", namespace="debian", name=name, version=version, qualifiers=qualifiers)
        yield Component(name=name, version=version, type=ComponentType.LIBRARY, bom_ref=purl.to_string(), purl=purl)


def _apk_packages(content: bytes) -> Iterator[Component]:
    for fields in _stanzas(content, ":"):
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        qualifiers = {"arch": fields["A"]} if fields.get("A") else None
        purl = PackageURL("apk", namespace="alpine", name=name, version=version, qualifiers=qualifiers)
        yield Component(name=name, version=version, type=ComponentType.LIBRARY, bom_ref=purl.to_string(), purl=purl)


def _python_package(content: bytes) -> Iterator[Component]:
    headers = BytesHeaderParser().parsebytes(content)
    name, version = headers.get("Name"), headers.get("Version")
    if name and version:
        purl = PackageURL("pypi", name=canonicalize_name(name), version=version)
        yield Component(name=name, version=version, type=ComponentType.LIBRARY, bom_ref=purl.to_string(), purl=purl)
