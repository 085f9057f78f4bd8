"""The worker's :class:`~forge_core.ports.contexts.ArtifactTracker`: tracking images pushed to the
configured tracking store (``FORGE_TRACKING__REGISTRY``, else the embedded OCI layout under the
state directory), signed with the configured key (else this machine's, generated once), and for a
container also listed among the published image's referrers. Opened on first use."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from forge_core.adapters.oci import open_store, tracking_store
from forge_core.adapters.signing_keys import load_signer
from forge_core.domain.models import ProducedArtifact
from forge_core.domain.oci import LayoutReference, RegistryCredentials, RegistryReference, parse_reference
from forge_core.domain.tracking import TrackingError, TrackingMetadata
from forge_core.ports.contexts import TrackingRequest
from forge_core.ports.oci import OciStore
from forge_core.services.signing import Signer
from forge_core.services.tracking import attach_tracking_to_image, create_tracking_image
from forge_core.settings import Settings
from forge_core.settings.oci import OciSettings

if TYPE_CHECKING:
    from forge_core.services.sbom import ImageSource


class ArtifactTracking:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._opened: tuple[OciStore, str, Signer] | None = None
        self._sboms = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sbom")

    def _open(self) -> tuple[OciStore, str, Signer]:
        with self._lock:
            if self._opened is None:
                store, prefix = tracking_store(self._settings)
                self._opened = (store, prefix, load_signer(self._settings))
            return self._opened

    def begin(self, artifact: ProducedArtifact, produced_at: datetime) -> Future[bytes]:
        """Start the artifact's SBOM now (it reads every file of an image), while it is published."""
        return self._sboms.submit(_sbom, artifact, produced_at)

    def track(self, request: TrackingRequest) -> tuple[str, str]:
        store, prefix, signer = self._open()
        artifact = request.artifact
        if artifact.digest is None:
            raise TrackingError("an artifact needs its digest for a tracking image", where=artifact.name)
        metadata = TrackingMetadata(
            name=artifact.name, type=artifact.type, project=artifact.project, repository=request.repository,
            commit=artifact.commit, run_id=request.run_id, producer=request.producer,
            produced_at=request.produced_at or request.finished_at, started_at=request.started_at,
            finished_at=request.finished_at,
            digest=artifact.digest, published=request.published, planned=request.planned,
        )
        if request.head_start is not None:
            sbom = request.head_start.result()
        else:
            sbom = _sbom(artifact, request.produced_at or request.finished_at)
        tracking = create_tracking_image(
            store, metadata, sbom, signer, prefix=prefix, ref=request.ref,
            producer_settings=request.producer_settings, secrets=request.secrets,
            builder_id=self._settings.tracking.builder_id,
        )
        for location, credentials in request.attach_to:
            registry, repository = str(location.metadata["registry"]), str(location.metadata["repository"])
            login = RegistryCredentials(*credentials) if credentials else None
            target = open_store(RegistryReference(registry, repository), OciSettings(), credentials=login)
            image = target.fetch_manifest(repository, location.digest or artifact.digest).descriptor
            attach_tracking_to_image(target, repository, image, tracking)
        return tracking.reference, tracking.digest


def _sbom(artifact: ProducedArtifact, timestamp: datetime) -> bytes:
    if artifact.digest is None:
        raise TrackingError("an artifact needs its digest for a tracking image", where=artifact.name)
    # cyclonedx is imported when an artifact is tracked, not when a worker starts (forge run's start-up)
    from forge_core.services.sbom import artifact_sbom

    return artifact_sbom(artifact, digest=artifact.digest, timestamp=timestamp, image=_image(artifact))


def _image(artifact: ProducedArtifact) -> ImageSource | None:
    """A container's image in the layout its producer wrote (the SBOM lists its files)."""
    reference = artifact.reference
    if artifact.type != "container" or not reference:
        return None
    parsed = parse_reference(reference)
    if not isinstance(parsed, LayoutReference):
        return None
    from forge_core.services.sbom import ImageSource

    return ImageSource(open_store(parsed), parsed.repository, artifact.digest or parsed.target or "")
