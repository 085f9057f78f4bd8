"""What a release page shows of each artifact's tracking image: its metadata, published locations,
provenance and SBOM summary, and whether its signature verifies (read as ``forge inspect`` reads
it, with the trusted keys of the settings)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from forge_core.adapters.oci import open_store
from forge_core.adapters.signing_keys import load_verifier
from forge_core.domain.errors import ForgeError
from forge_core.domain.oci import parse_reference
from forge_core.services import schemas as s
from forge_core.services.tracking import TrackingRecord, read_tracking_image
from forge_core.settings import Settings


@dataclass(frozen=True)
class ArtifactDetails:
    artifact: s.Artifact
    record: TrackingRecord | None
    problem: str | None  # why the tracking image could not be read

    @property
    def builder(self) -> str:
        if self.record is None:
            return ""
        run: dict[str, Any] = self.record.provenance.get("predicate", {}).get("runDetails", {})
        return str(run.get("builder", {}).get("id", ""))


async def tracking_details(settings: Settings, release: s.Release) -> list[ArtifactDetails]:
    return await asyncio.to_thread(_read_all, settings, release)


def _read_all(settings: Settings, release: s.Release) -> list[ArtifactDetails]:
    try:
        verifier = load_verifier(settings)
    except ForgeError:
        verifier = None  # an unreadable key file: signatures show as not checked, the reason below
    return [_read(settings, artifact, verifier) for artifact in release.artifacts]


def _read(settings: Settings, artifact: s.Artifact, verifier: Any) -> ArtifactDetails:
    try:
        parsed = parse_reference(artifact.tracking_oci_uri)
        if parsed.target is None:
            return ArtifactDetails(artifact, None, "the tracking reference names no tag or digest")
        store = open_store(parsed, settings.oci)
        return ArtifactDetails(artifact, read_tracking_image(store, parsed.repository, parsed.target, verifier), None)
    except ForgeError as error:
        return ArtifactDetails(artifact, None, f"{error.message} ({error.where})" if error.where else error.message)
