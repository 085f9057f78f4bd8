"""Tracking images as data: their media types, names, metadata, SLSA provenance and DSSE envelopes.

A tracking image (DESIGN.md, "Artifacts, releases and deployments: the formats") records one
artifact of one commit: ``<tracking-registry>/<repository>/<project>/<artifact>:sha-<commit>``, an
OCI 1.1 artifact manifest with the empty config and three layers (metadata, CycloneDX SBOM, the
SLSA v1 provenance statement, as a DSSE envelope when signed). Pure: no I/O, no keys; the
service :mod:`forge_core.services.tracking` writes and reads them, :mod:`forge_core.services.signing`
signs and verifies.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forge_core.domain.errors import ForgeError
from forge_core.domain.models import PublishedLocation
from forge_core.domain.oci import check_repository
from forge_core.domain.secrets import mask_secrets

# --- media types and fixed URIs ------------------------------------------------------------------

ARTIFACT_TYPE = "application/vnd.forge.artifact.tracking.v1"
METADATA_MEDIA_TYPE = "application/vnd.forge.artifact.metadata.v1+json"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://forge.projectcatalyst.io/buildtypes/artifact/v1"
DEFAULT_BUILDER_ID = "https://forge.projectcatalyst.io/builders/forge/v1"

# The layer roles of the earlier design (DOCS-OLD, "Artifact OCI Tracking Images").
LAYER_TYPE = "org.catalyst-forge.layer.type"
ANNOTATION_PREFIX = "forge.projectcatalyst.io/"

_COMMIT = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_OWNER_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# Setting names whose values are credentials: never copied into provenance.
_SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|private|auth", re.IGNORECASE)


class TrackingError(ForgeError):
    """A tracking image that cannot be written or read as given; ``where`` names the reference."""

    code = "tracking_error"


class TrackingConflict(TrackingError):
    """The ``sha-<commit>`` tag already points at a different tracking image (they are immutable)."""

    code = "tracking_conflict"


class MalformedTrackingImage(TrackingError):
    """A manifest or layer that is not a tracking image of ours (``where``: reference and layer)."""

    code = "tracking_malformed"


class TrackingReferenceError(TrackingError):
    """A tracking reference, repository, project, artifact or commit that does not parse."""

    code = "tracking_bad_reference"
    exit_code = 2


# --- names ------------------------------------------------------------------------------------------


def check_commit(commit: str) -> str:
    if not _COMMIT.fullmatch(commit):
        raise TrackingReferenceError(f"bad commit {commit!r}: expected 40 lower-case hex digits", where="commit")
    return commit


def tracking_tag(commit: str) -> str:
    """``sha-<40 hex>``: the tag of a commit's tracking image (never a ``sha256-`` fallback tag)."""
    return "sha-" + check_commit(commit)


def tracking_repository(repository: str, project: str, artifact: str) -> str:
    """``<repository name without owner>/<project>/<artifact>`` (``acme/monorepo`` → ``monorepo/…``)."""
    if not _OWNER_NAME.fullmatch(repository):
        raise TrackingReferenceError(f"bad repository {repository!r}: expected 'owner/name'", where="repository")
    for field_name, value in (("project", project), ("artifact", artifact)):
        if not _NAME.fullmatch(value):
            raise TrackingReferenceError(
                f"bad {field_name} {value!r}: lower-case [a-z0-9] separated by '.', '_' or '-'", where=field_name
            )
    name = repository.split("/", 1)[1].lower()
    return check_repository(f"{name}/{project}/{artifact}")


# --- metadata -------------------------------------------------------------------------------------------


class TrackingMetadata(BaseModel):
    """The metadata layer: what the artifact is, where it went, and the run that made it.

    ``published`` are the locations its publishers wrote; ``planned`` those they would write (a
    run without ``--publish`` plans and contacts no publisher's host).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    name: str
    type: str
    project: str
    repository: str = Field(description="owner/name")
    commit: str
    run_id: str
    producer: str
    produced_at: datetime
    started_at: datetime
    finished_at: datetime
    digest: str = Field(description="sha256:<hex> of the artifact (a container: its manifest or index)")
    published: tuple[PublishedLocation, ...] = ()
    planned: tuple[PublishedLocation, ...] = ()

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        if not _COMMIT.fullmatch(value):
            raise ValueError(f"bad commit {value!r}: expected 40 lower-case hex digits")
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _OWNER_NAME.fullmatch(value):
            raise ValueError(f"bad repository {value!r}: expected 'owner/name'")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
            raise ValueError(f"bad digest {value!r}: expected 'sha256:' and 64 lower-case hex digits")
        return value

    @field_validator("produced_at", "started_at", "finished_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a time needs a time zone (UTC)")
        return value

    def to_json(self) -> bytes:
        return canonical(self.model_dump(mode="json"))


def canonical(data: Any) -> bytes:
    """The one serialisation of the JSON layers we write: sorted keys, compact, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- provenance -------------------------------------------------------------------------------------


def public_settings(settings: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """``settings`` without credentials: keys that name one are dropped, known secret values masked."""
    values = tuple(secrets)

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        if isinstance(value, str):
            return mask_secrets(value, values)
        return value

    cleaned: dict[str, Any] = clean(settings)
    return cleaned


def provenance_statement(
    metadata: TrackingMetadata,
    *,
    ref: str | None = None,
    repository_url: str | None = None,
    producer_settings: Mapping[str, Any] | None = None,
    secrets: Iterable[str] = (),
    builder_id: str = DEFAULT_BUILDER_ID,
) -> dict[str, Any]:
    """The SLSA v1 provenance of the artifact as an in-toto Statement v1 (a JSON object).

    ``repository_url`` is where the source is fetched from (default: the ``owner/name``); the
    producer's settings go in with every credential dropped (:func:`public_settings`).
    """
    source = repository_url or metadata.repository
    external: dict[str, Any] = {
        "repository": metadata.repository,
        "commit": metadata.commit,
        "project": metadata.project,
        "artifact": metadata.name,
        "producer": {"type": metadata.producer, "settings": public_settings(producer_settings or {}, secrets)},
    }
    if ref:
        external["ref"] = ref
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": metadata.name, "digest": {"sha256": metadata.digest.removeprefix("sha256:")}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": [
                    {"uri": f"git+{source}@{metadata.commit}", "digest": {"gitCommit": metadata.commit}}
                ],
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {
                    "invocationId": metadata.run_id,
                    "startedOn": rfc3339(metadata.started_at),
                    "finishedOn": rfc3339(metadata.finished_at),
                },
            },
        },
    }


def check_statement(statement: Any, *, where: str) -> dict[str, Any]:
    """``statement`` if it is an in-toto v1 statement of SLSA v1 provenance, else MalformedTrackingImage."""
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise MalformedTrackingImage(f"not an in-toto Statement v1 (_type {STATEMENT_TYPE})", where=where)
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        raise MalformedTrackingImage(
            f"predicateType {statement.get('predicateType')!r}, expected {SLSA_PROVENANCE_V1}", where=where
        )
    subjects = statement.get("subject")
    if (
        not isinstance(subjects, list)
        or not subjects
        or not all(isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"] for s in subjects)
    ):
        raise MalformedTrackingImage("every subject needs a digest", where=where)
    if not isinstance(statement.get("predicate"), dict):
        raise MalformedTrackingImage("no predicate object", where=where)
    return statement


# --- DSSE ----------------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


class DsseSignature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    keyid: str = ""
    sig: str


class DsseEnvelope(BaseModel):
    """A DSSE envelope (``payload`` and ``sig`` base64, standard alphabet)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    payload_type: str = Field(alias="payloadType")
    payload: str
    signatures: tuple[DsseSignature, ...] = ()

    def payload_bytes(self) -> bytes:
        return base64.b64decode(self.payload, validate=True)

    def to_json(self) -> bytes:
        return canonical(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def parse(cls, raw: bytes, *, where: str) -> DsseEnvelope:
        try:
            envelope = cls.model_validate_json(raw)
            envelope.payload_bytes()
            for signature in envelope.signatures:
                base64.b64decode(signature.sig, validate=True)
        except (ValidationError, ValueError) as exc:
            raise MalformedTrackingImage(f"not a DSSE envelope: {_first_line(exc)}", where=where) from None
        if not envelope.signatures:
            raise MalformedTrackingImage("DSSE envelope with no signature", where=where)
        return envelope


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
