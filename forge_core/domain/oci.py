"""OCI content as data: digests, descriptors, image manifests and indexes, references, errors.

Pure and framework-free: what the OCI store port (:mod:`forge_core.ports.oci`) takes and returns.
Manifests we build are serialised one way only (:func:`canonical_json`), so the same inputs give
the same bytes and so the same digest; manifests we read keep their bytes as received, because a
digest is over bytes, never over a re-serialisation.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from forge_core.domain.errors import ForgeError

# Media types (OCI image-spec 1.1).
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Docker's manifest types: read (a registry may hold them), never written.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MANIFEST, INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"

EMPTY_JSON = b"{}"

_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# distribution's path grammar: lower-case components separated by '/', each with '.', '_', '__' or '-' runs.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\]"
)


# --- errors ---------------------------------------------------------------------------------------


class OciError(ForgeError):
    """An OCI store refused or failed an operation.

    ``registry`` is the registry host (or the layout folder) and ``reference`` what was being read
    or written (``repository``, ``repository:tag`` or ``repository@digest``). Neither ever holds a
    credential.
    """

    code = "oci_error"

    def __init__(self, message: str, *, registry: str, reference: str | None = None) -> None:
        self.registry = registry
        self.reference = reference
        where = f"{registry}/{reference}" if reference else registry
        super().__init__(message, where=where, details={"registry": registry, "reference": reference})


class OciReferenceError(OciError):
    """A reference, digest, tag or repository name that does not parse."""

    code = "oci_bad_reference"
    exit_code = 2


class OciNotFound(OciError):
    """The manifest, tag or blob is not in the store."""

    code = "oci_not_found"


class OciAuthError(OciError):
    """The registry refused the credentials (or asked for some and none were given)."""

    code = "oci_unauthorized"


class OciUnavailable(OciError):
    """The registry did not answer (connection errors, 5xx, 429) after every retry."""

    code = "oci_unavailable"


class OciDigestMismatch(OciError):
    """Content whose digest or size is not what its descriptor promised."""

    code = "oci_digest_mismatch"


class OciTooLarge(OciError):
    """Content larger than the caller's limit."""

    code = "oci_too_large"


class OciRejected(OciError):
    """The registry answered with an error of its own (``MANIFEST_BLOB_UNKNOWN``, …)."""

    code = "oci_rejected"


class OciConflict(OciError):
    """Concurrent writers kept replacing a shared index (the referrers fallback) past the retries."""

    code = "oci_conflict"


# --- digests ---------------------------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, *, registry: str = "", reference: str | None = None) -> str:
    """``digest`` if it is a well-formed ``sha256:<64 hex>``, else :class:`OciReferenceError`."""
    if not _DIGEST.fullmatch(digest):
        raise OciReferenceError(
            f"bad digest {digest!r}: expected 'sha256:' and 64 lower-case hex digits",
            registry=registry,
            reference=reference,
        )
    return digest


def check_tag(tag: str, *, registry: str = "", reference: str | None = None) -> str:
    if not _TAG.fullmatch(tag):
        raise OciReferenceError(
            f"bad tag {tag!r}: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            registry=registry,
            reference=reference,
        )
    return tag


def check_repository(name: str, *, registry: str = "") -> str:
    if not name or not all(_PATH_COMPONENT.fullmatch(part) for part in name.split("/")):
        raise OciReferenceError(
            f"bad repository name {name!r}: '/'-separated lower-case components of [a-z0-9._-]",
            registry=registry,
            reference=name,
        )
    return name


def fallback_tag(subject_digest: str) -> str:
    """The referrers tag-schema fallback tag of a subject: ``sha256-<hex>`` (distribution-spec 1.1)."""
    algorithm, _, hex_part = check_digest(subject_digest).partition(":")
    return f"{algorithm}-{hex_part}"


# --- descriptors, manifests, indexes ----------------------------------------------------------------


class OciModel(BaseModel):
    """camelCase on the wire; unknown fields of manifests we read are kept, not dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="allow")


class Platform(OciModel):
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")


class Descriptor(OciModel):
    media_type: str
    digest: str
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None
    artifact_type: str | None = None
    platform: Platform | None = None
    urls: list[str] | None = None
    data: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _DIGEST.fullmatch(value):
            raise ValueError(f"bad digest {value!r}: expected 'sha256:' and 64 lower-case hex digits")
        return value

    @classmethod
    def of(cls, data: bytes, media_type: str, **fields: Any) -> Descriptor:
        """The descriptor of ``data``."""
        return cls(media_type=media_type, digest=sha256_digest(data), size=len(data), **fields)


EMPTY_DESCRIPTOR = Descriptor.of(EMPTY_JSON, EMPTY)


class Manifest(OciModel):
    """An OCI 1.1 image manifest (also the artifact form: ``artifactType`` with the empty config)."""

    schema_version: int = 2
    media_type: str = MANIFEST
    artifact_type: str | None = None
    config: Descriptor = EMPTY_DESCRIPTOR
    layers: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class Index(OciModel):
    """An OCI image index: a multi-platform image, or the referrers list of a subject."""

    schema_version: int = 2
    media_type: str = INDEX
    artifact_type: str | None = None
    manifests: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


def canonical_json(document: OciModel | dict[str, Any]) -> bytes:
    """The one serialisation of what we write: compact, keys in field order, no null fields."""
    data = (
        document.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(document, OciModel)
        else document
    )
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as the store holds it: its descriptor, its exact bytes, and it parsed."""

    descriptor: Descriptor
    raw: bytes
    document: Manifest | Index


def manifest_bytes(manifest: Manifest | Index | FetchedManifest) -> tuple[Manifest | Index, str, bytes]:
    """What to push for a manifest: its document, media type and bytes. A fetched one keeps the
    bytes it came with (a copy must keep its digest); one we build is serialised canonically."""
    if isinstance(manifest, FetchedManifest):
        return manifest.document, manifest.descriptor.media_type or manifest.document.media_type, manifest.raw
    return manifest, manifest.media_type, canonical_json(manifest)


def parse_manifest(raw: bytes, media_type: str | None, *, registry: str, reference: str) -> Manifest | Index:
    """Parse manifest bytes; an unreadable one is an :class:`OciRejected` naming where it came from."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        kind = data.get("mediaType") or media_type
        if kind in (INDEX, DOCKER_MANIFEST_LIST) or (kind is None and "manifests" in data):
            return Index.model_validate(data)
        return Manifest.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise OciRejected(f"unreadable manifest: {exc}", registry=registry, reference=reference) from exc


def referrer_descriptor(manifest: Manifest, raw: bytes) -> Descriptor:
    """How a referrer is listed in a referrers index: its artifact type and annotations carried up."""
    return Descriptor(
        media_type=manifest.media_type,
        digest=sha256_digest(raw),
        size=len(raw),
        artifact_type=manifest.artifact_type or manifest.config.media_type,
        annotations=manifest.annotations,
    )


# --- references --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryReference:
    """``host[:port]/path[:tag][@sha256:…]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}{self.suffix}"

    @property
    def suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def target(self) -> str | None:
        """What to fetch: the digest when pinned, else the tag."""
        return self.digest or self.tag


@dataclass(frozen=True)
class LayoutReference:
    """``oci-layout:PATH[:tag][@sha256:…]`` (skopeo's ``oci:PATH[:tag]`` is accepted too)."""

    path: Path
    tag: str | None = None
    digest: str | None = None
    registry: str = field(init=False)
    repository: str = field(init=False)

    def __post_init__(self) -> None:
        # A layout store is rooted at the folder's parent; the folder is the repository.
        object.__setattr__(self, "registry", str(self.path.parent))
        object.__setattr__(self, "repository", self.path.name)

    def __str__(self) -> str:
        return f"oci-layout:{self.path}{self.suffix}"

    @property
    def suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def target(self) -> str | None:
        return self.digest or self.tag


Reference = RegistryReference | LayoutReference

_LAYOUT_PREFIXES = ("oci-layout:", "oci:")


def parse_reference(text: str) -> Reference:
    """Parse an image reference; anything malformed is an :class:`OciReferenceError` saying what."""
    for prefix in _LAYOUT_PREFIXES:
        if text.startswith(prefix):
            return _parse_layout(text, text[len(prefix) :])
    return _parse_registry(text)


def _split_digest(text: str, whole: str, registry: str) -> tuple[str, str | None]:
    rest, at, digest = text.rpartition("@")
    if not at:
        return text, None
    return rest, check_digest(digest, registry=registry, reference=whole)


def _parse_layout(whole: str, body: str) -> LayoutReference:
    body, digest = _split_digest(body, whole, "oci-layout")
    path, colon, tag = body.rpartition(":")
    if not colon or "/" in tag:
        path, tag = body, ""
    if not path:
        raise OciReferenceError(f"bad reference {whole!r}: no layout folder", registry="oci-layout", reference=whole)
    if tag:
        check_tag(tag, registry=path, reference=whole)
    return LayoutReference(Path(path), tag or None, digest)


def _parse_registry(whole: str) -> RegistryReference:
    body, digest = _split_digest(whole, whole, "")
    host, slash, path = body.partition("/")
    hostname, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not colon:
        hostname, port = host, ""
    if not slash or not path or not _HOST.fullmatch(hostname) or (colon and not port.isdigit()):
        raise OciReferenceError(
            f"bad reference {whole!r}: expected host[:port]/path[:tag][@sha256:…]",
            registry=host,
            reference=whole,
        )
    name, colon, tag = path.rpartition(":")
    if not colon:
        name, tag = path, ""
    check_repository(name, registry=host)
    if tag:
        check_tag(tag, registry=host, reference=whole)
    return RegistryReference(host, name, tag or None, digest)


# A token alone (no user name) is sent as this user's password: registries that take personal
# access tokens (GHCR, GitLab, Docker Hub, a distribution token server) accept any user name.
REGISTRY_TOKEN_USERNAME = "token"


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and a password (or a token used as one); the secret never shows in a repr."""

    username: str
    password: str = field(repr=False)
