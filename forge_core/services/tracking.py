"""Writing and reading tracking images through the OCI store port.

:func:`create_tracking_image` pushes ``<repository>/<project>/<artifact>:sha-<commit>``: an OCI 1.1
artifact manifest (``artifactType`` :data:`~forge_core.domain.tracking.ARTIFACT_TYPE`, the empty
config) with three layers — the metadata, the CycloneDX SBOM, and the SLSA v1 provenance statement
(a DSSE envelope when signed). Everything in it comes from the inputs (times included), so the same
inputs give the same digest; pushing it again is a no-op, and a tag that already names a different
image is refused, because tracking images are immutable.
:func:`attach_tracking_to_image` lists the same content among a published image's referrers;
:func:`read_tracking_image` reads one back, checks it and verifies its signature.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from forge_core.domain.oci import (
    EMPTY,
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    TITLE,
    Descriptor,
    Manifest,
    OciError,
    OciNotFound,
    OciTooLarge,
    canonical_json,
    check_tag,
    sha256_digest,
)
from forge_core.domain.tracking import (
    ANNOTATION_PREFIX,
    ARTIFACT_TYPE,
    DEFAULT_BUILDER_ID,
    DSSE_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    LAYER_TYPE,
    METADATA_MEDIA_TYPE,
    SBOM_MEDIA_TYPE,
    Byproduct,
    DsseEnvelope,
    MalformedTrackingImage,
    TrackingConflict,
    TrackingError,
    TrackingMetadata,
    byproducts_of,
    canonical,
    check_statement,
    provenance_statement,
    rfc3339,
    tracking_repository,
    tracking_tag,
)
from forge_core.ports.oci import OciStore
from forge_core.services.signing import Signer, Verification, Verifier

if TYPE_CHECKING:
    from forge_core.services.sbom import SbomSummary

CREATED = "org.opencontainers.image.created"
REVISION = "org.opencontainers.image.revision"

# What a reader accepts per layer: tracking layers are small JSON documents.
LAYER_LIMITS = {METADATA_MEDIA_TYPE: 4 * 1024**2, SBOM_MEDIA_TYPE: 256 * 1024**2, "provenance": 16 * 1024**2}


@dataclass(frozen=True)
class TrackingImage:
    """A pushed tracking image: where (``reference``), its manifest digest and descriptor, and its
    content (the manifest and its layers' bytes, small JSON) for copying it next to an image;
    no bytes for one found already attached (:func:`attach_tracking_to_image`)."""

    reference: str
    digest: str
    descriptor: Descriptor
    manifest: Manifest = field(repr=False)
    blobs: Mapping[str, bytes] = field(repr=False)


@dataclass(frozen=True)
class TrackingRecord:
    """A tracking image read back. ``signature``: True verified, False not (``signature_note``
    says why: unsigned, an untrusted key, a bad signature), None when no public key was given."""

    reference: str
    digest: str
    metadata: TrackingMetadata
    provenance: dict[str, Any]
    sbom: SbomSummary
    signature: bool | None
    signature_note: str
    keyid: str | None = None
    subject: Descriptor | None = None


def reference_of(store: OciStore, repository: str, suffix: str) -> str:
    """How a user names ``repository`` of ``store``: ``host:port/repo…`` or ``oci-layout:/root/repo…``."""
    location = store.location
    # A registry's location is host[:port] (never a '/'); a layout store's is its folder.
    if "/" in location or Path(location).is_dir():
        return f"oci-layout:{location}/{repository}{suffix}"
    return f"{location}/{repository}{suffix}"


def tracking_manifest(
    metadata: TrackingMetadata,
    sbom: bytes,
    *,
    signer: Signer | None,
    ref: str | None = None,
    repository_url: str | None = None,
    producer_settings: Mapping[str, Any] | None = None,
    secrets: Iterable[str] = (),
    builder_id: str = DEFAULT_BUILDER_ID,
    subject: Descriptor | None = None,
) -> tuple[Manifest, dict[str, bytes]]:
    """The tracking manifest and its layers' bytes (by digest), built from the inputs alone."""
    metadata_json = metadata.to_json()
    byproducts = [
        Byproduct("metadata.json", METADATA_MEDIA_TYPE, sha256_digest(metadata_json)),
        Byproduct("sbom.cdx.json", SBOM_MEDIA_TYPE, sha256_digest(sbom)),
    ]
    statement = canonical(
        provenance_statement(
            metadata,
            ref=ref,
            repository_url=repository_url,
            producer_settings=producer_settings,
            secrets=secrets,
            builder_id=builder_id,
            byproducts=byproducts,
        )
    )
    if signer is not None:
        provenance, provenance_type = signer.sign(IN_TOTO_MEDIA_TYPE, statement).to_json(), DSSE_MEDIA_TYPE
    else:
        provenance, provenance_type = statement, IN_TOTO_MEDIA_TYPE
    layers = [
        (metadata_json, METADATA_MEDIA_TYPE, "metadata", "metadata.json"),
        (sbom, SBOM_MEDIA_TYPE, "sbom", "sbom.cdx.json"),
        (provenance, provenance_type, "attestation", "provenance.json" if signer is None else "provenance.dsse.json"),
    ]
    descriptors = [
        Descriptor.of(data, media_type, annotations={LAYER_TYPE: role, TITLE: title})
        for data, media_type, role, title in layers
    ]
    manifest = Manifest(
        artifact_type=ARTIFACT_TYPE,
        config=EMPTY_DESCRIPTOR,
        layers=descriptors,
        subject=subject,
        annotations={
            CREATED: rfc3339(metadata.produced_at),
            REVISION: metadata.commit,
            ANNOTATION_PREFIX + "repository": metadata.repository,
            ANNOTATION_PREFIX + "project": metadata.project,
            ANNOTATION_PREFIX + "artifact": metadata.name,
            ANNOTATION_PREFIX + "run": metadata.run_id,
        },
    )
    blobs = {descriptor.digest: data for descriptor, (data, *_) in zip(descriptors, layers, strict=True)}
    blobs[EMPTY_DESCRIPTOR.digest] = EMPTY_JSON
    return manifest, blobs


def create_tracking_image(
    store: OciStore,
    metadata: TrackingMetadata,
    sbom: bytes,
    signer: Signer | None,
    *,
    prefix: str = "",
    ref: str | None = None,
    repository_url: str | None = None,
    producer_settings: Mapping[str, Any] | None = None,
    secrets: Iterable[str] = (),
    builder_id: str = DEFAULT_BUILDER_ID,
    subject: Descriptor | None = None,
) -> TrackingImage:
    """Push the tracking image of ``metadata``'s artifact to ``store`` and return where it is.

    The repository is ``[prefix/]<repository name>/<project>/<artifact>`` (:func:`tracking_repository`),
    the tag ``sha-<commit>``. ``sbom`` is the CycloneDX JSON (:mod:`forge_core.services.sbom`);
    ``signer`` signs the provenance (None: an unsigned in-toto statement). ``ref`` (the git ref),
    ``repository_url`` (the source's URL), ``producer_settings`` and ``builder_id`` go into the
    provenance, with every ``secrets`` value masked and credential-named settings dropped.
    ``subject`` (a published image's manifest, in the same store) also lists it among that image's
    referrers. Same inputs, same digest: pushing again is a no-op; a ``sha-<commit>`` tag that
    names a different digest raises :class:`TrackingConflict` naming both. A store that fails
    raises its :class:`~forge_core.domain.oci.OciError` as is (``OciUnavailable`` after the
    store's retries, ``OciAuthError``, …), naming the registry and the reference.
    """
    repository = tracking_repository(metadata.repository, metadata.project, metadata.name)
    if prefix:
        repository = f"{prefix.strip('/')}/{repository}"
    tag = tracking_tag(metadata.commit)
    manifest, blobs = tracking_manifest(
        metadata,
        sbom,
        signer=signer,
        ref=ref,
        repository_url=repository_url,
        producer_settings=producer_settings,
        secrets=secrets,
        builder_id=builder_id,
        subject=subject,
    )
    return _push(store, repository, manifest, blobs, tag)


def attach_tracking_to_image(
    store: OciStore, image_repository: str, image_descriptor: Descriptor, tracking: TrackingImage
) -> TrackingImage:
    """List ``tracking``'s content among the referrers of a published image (``image_repository``
    in ``store``, the image's registry): the same layers, ``subject`` = the image. The store uses
    the ``sha256-<hex>`` tag fallback where the registry has no referrers API. Idempotent, also
    across runs that share no memory: a tracking image of the same artifact (repository, project,
    name) and commit already among the referrers is returned as found (its ``blobs`` empty: nothing
    was sent), so a re-run at the same commit adds no second referrer."""
    found = _attached(store, image_repository, image_descriptor.digest, tracking.manifest)
    if found is not None:
        return found
    manifest = tracking.manifest.model_copy(
        update={
            "subject": Descriptor(
                media_type=image_descriptor.media_type, digest=image_descriptor.digest, size=image_descriptor.size
            )
        }
    )
    return _push(store, image_repository, manifest, tracking.blobs, None)


_IDENTITY = (REVISION, *(ANNOTATION_PREFIX + key for key in ("repository", "project", "artifact")))


def _attached(store: OciStore, repository: str, subject: str, ours: Manifest) -> TrackingImage | None:
    """The tracking image of ``ours``'s artifact and commit already listed among ``subject``'s referrers."""
    wanted = {key: (ours.annotations or {}).get(key) for key in _IDENTITY}
    for descriptor in store.referrers(repository, subject, artifact_type=ARTIFACT_TYPE):
        annotations = descriptor.annotations
        fetched = None
        if not annotations or any(key not in annotations for key in _IDENTITY):
            fetched = store.fetch_manifest(repository, descriptor.digest)
            annotations = fetched.document.annotations
        if {key: (annotations or {}).get(key) for key in _IDENTITY} == wanted:
            fetched = fetched or store.fetch_manifest(repository, descriptor.digest)
            if isinstance(fetched.document, Manifest):
                return TrackingImage(reference_of(store, repository, f"@{descriptor.digest}"), descriptor.digest,
                                     descriptor, fetched.document, {})
    return None


def _push(
    store: OciStore, repository: str, manifest: Manifest, blobs: Mapping[str, bytes], tag: str | None
) -> TrackingImage:
    raw = canonical_json(manifest)
    descriptor = Descriptor.of(raw, manifest.media_type, artifact_type=ARTIFACT_TYPE)
    suffix = f":{tag}" if tag else f"@{descriptor.digest}"
    reference = reference_of(store, repository, suffix)
    if tag is not None:
        check_tag(tag, registry=store.location, reference=repository)
        existing = _resolve(store, repository, tag)
        if existing is not None and existing.digest != descriptor.digest:
            raise TrackingConflict(
                f"tag {tag} already names tracking image {existing.digest}, not {descriptor.digest}: "
                "tracking images are immutable",
                where=reference,
            )
        if existing is not None and not manifest.subject:
            return TrackingImage(reference, descriptor.digest, descriptor, manifest, blobs)
    media_types = {d.digest: d.media_type for d in manifest.layers} | {EMPTY_DESCRIPTOR.digest: EMPTY}
    for digest, data in sorted(blobs.items()):
        store.push_blob(repository, data, media_types[digest])
    tags = (tag,) if tag else ()
    if manifest.subject is not None:
        store.attach_referrer(repository, manifest, tags=tags)
    else:
        store.push_manifest(repository, manifest, tags=tags)
    return TrackingImage(reference, descriptor.digest, descriptor, manifest, blobs)


def _resolve(store: OciStore, repository: str, tag: str) -> Descriptor | None:
    try:
        return store.resolve(repository, tag)
    except OciNotFound:
        return None


# --- reading -------------------------------------------------------------------------------------------


def read_tracking_image(store: OciStore, repository: str, reference: str, verifier: Verifier | None) -> TrackingRecord:
    """Read the tracking image ``repository:reference`` (a tag or digest) back and check it.

    Refused with :class:`MalformedTrackingImage` naming the reference and the layer: another
    artifact type, a missing or doubled layer, a layer over its size limit, JSON that does not
    parse or validate, provenance whose subject is not the artifact. The signature is verified
    offline with ``verifier``'s keys (None: not checked).
    """
    where = reference_of(store, repository, f"@{reference}" if reference.startswith("sha256:") else f":{reference}")
    try:
        fetched = store.fetch_manifest(repository, reference)
    except OciError as exc:
        raise TrackingError(f"cannot read the tracking image: {exc.message}", where=where) from exc
    manifest = fetched.document
    if not isinstance(manifest, Manifest):
        raise MalformedTrackingImage("an image index, not a tracking manifest", where=where)
    if manifest.artifact_type != ARTIFACT_TYPE:
        raise MalformedTrackingImage(f"artifactType {manifest.artifact_type!r}, expected {ARTIFACT_TYPE}", where=where)
    with tempfile.TemporaryDirectory(prefix="forge-tracking-") as folder:
        metadata_raw = _layer(store, repository, manifest, (METADATA_MEDIA_TYPE,), Path(folder), where)
        sbom_raw = _layer(store, repository, manifest, (SBOM_MEDIA_TYPE,), Path(folder), where)
        provenance_raw, provenance_type = _provenance_layer(store, repository, manifest, Path(folder), where)

    try:
        metadata = TrackingMetadata.model_validate_json(metadata_raw)
    except ValidationError as exc:
        raise MalformedTrackingImage(
            f"metadata layer does not validate: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
            where=f"{where} layer {METADATA_MEDIA_TYPE}",
        ) from None
    sbom = _json(sbom_raw, f"{where} layer {SBOM_MEDIA_TYPE}")
    if not isinstance(sbom, dict) or sbom.get("bomFormat") != "CycloneDX":
        raise MalformedTrackingImage("not a CycloneDX BOM", where=f"{where} layer {SBOM_MEDIA_TYPE}")

    layer_where = f"{where} layer {provenance_type}"
    signature: bool | None
    keyid = None
    if provenance_type == DSSE_MEDIA_TYPE:
        envelope = DsseEnvelope.parse(provenance_raw, where=layer_where)
        if envelope.payload_type != IN_TOTO_MEDIA_TYPE:
            raise MalformedTrackingImage(f"DSSE payloadType {envelope.payload_type!r}", where=layer_where)
        statement = _json(envelope.payload_bytes(), layer_where)
        if verifier is None:
            signature, note = None, "signed, not verified: no public key configured"
        else:
            verification: Verification = verifier.verify(envelope)
            signature, note, keyid = verification.verified, verification.reason, verification.keyid
    else:
        statement = _json(provenance_raw, layer_where)
        signature, note = False, "not signed (the provenance is a bare in-toto statement)"
    statement = check_statement(statement, where=layer_where)
    # The signature covers the other layers through the digests the statement names.
    named = byproducts_of(statement)
    for descriptor in manifest.layers:
        expected = named.get(descriptor.media_type)
        if expected is not None and expected != descriptor.digest:
            signature = False
            note = f"the {descriptor.media_type} layer is not the one the provenance names ({expected})"
    digests = [s["digest"].get("sha256") for s in statement["subject"]]
    if metadata.digest.removeprefix("sha256:") not in digests:
        raise MalformedTrackingImage(
            f"provenance subject {digests} is not the artifact's digest {metadata.digest}", where=layer_where
        )
    from forge_core.services.sbom import summarise_sbom  # cyclonedx only when a record is read

    return TrackingRecord(
        reference=where,
        digest=fetched.descriptor.digest,
        metadata=metadata,
        provenance=statement,
        sbom=summarise_sbom(sbom),
        signature=signature,
        signature_note=note,
        keyid=keyid,
        subject=manifest.subject,
    )


def _provenance_layer(
    store: OciStore, repository: str, manifest: Manifest, folder: Path, where: str
) -> tuple[bytes, str]:
    kinds = (DSSE_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE)
    found = [d.media_type for d in manifest.layers if d.media_type in kinds]
    raw = _layer(store, repository, manifest, kinds, folder, where, limit=LAYER_LIMITS["provenance"])
    return raw, found[0]


def _layer(
    store: OciStore,
    repository: str,
    manifest: Manifest,
    media_types: tuple[str, ...],
    folder: Path,
    where: str,
    *,
    limit: int | None = None,
) -> bytes:
    matches = [d for d in manifest.layers if d.media_type in media_types]
    names = " or ".join(media_types)
    if len(matches) != 1:
        raise MalformedTrackingImage(f"{len(matches)} layers of type {names}, expected one", where=where)
    descriptor = matches[0]
    maximum = limit or LAYER_LIMITS[descriptor.media_type]
    layer_where = f"{where} layer {descriptor.media_type}"
    if descriptor.size > maximum:
        raise MalformedTrackingImage(
            f"layer of {descriptor.size} bytes, over the limit of {maximum}", where=layer_where
        )
    try:
        path = store.fetch_blob(repository, descriptor, folder / descriptor.digest.replace(":", "-"), max_size=maximum)
    except OciTooLarge as exc:
        raise MalformedTrackingImage(
            f"layer over the limit of {maximum} bytes: {exc.message}", where=layer_where
        ) from None
    except OciError as exc:
        raise MalformedTrackingImage(f"cannot read the layer: {exc.message}", where=layer_where) from exc
    return path.read_bytes()


def _json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedTrackingImage(f"bad JSON: {exc}", where=where) from None
