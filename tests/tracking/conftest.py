"""Fixtures of the tracking-image tests: an artifact's metadata, signers, and stores."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.domain.models import PublishedLocation
from forge_core.domain.tracking import TrackingMetadata
from forge_core.services.sbom import files_sbom
from forge_core.services.signing import Signer

COMMIT = "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a"
RUN_ID = "run-0a1b2c3d"
PRODUCED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
BINARY = b"#!/bin/sh\necho acmectl 1.2.0\n"
BINARY_DIGEST = "sha256:" + hashlib.sha256(BINARY).hexdigest()


def make_metadata(**changes: object) -> TrackingMetadata:
    fields: dict[str, object] = {
        "name": "acmectl",
        "type": "binary",
        "project": "cli",
        "repository": "acme/monorepo",
        "commit": COMMIT,
        "run_id": RUN_ID,
        "producer": "exec",
        "produced_at": PRODUCED,
        "started_at": datetime(2026, 3, 4, 5, 5, 0, tzinfo=UTC),
        "finished_at": PRODUCED,
        "digest": BINARY_DIGEST,
        "published": (
            PublishedLocation(
                publisher="releases", type="s3", uri="s3://acme-releases/cli/acmectl", digest=BINARY_DIGEST
            ),
        ),
        "planned": (
            PublishedLocation(publisher="github", type="github", uri="https://github.com/acme/monorepo/releases"),
        ),
    }
    fields.update(changes)
    return TrackingMetadata.model_validate(fields)


@pytest.fixture
def metadata() -> TrackingMetadata:
    return make_metadata()


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "acmectl"
    path.write_bytes(BINARY)
    return path


@pytest.fixture
def sbom(binary: Path) -> bytes:
    return files_sbom([binary], name="acmectl", digest=BINARY_DIGEST, timestamp=PRODUCED)


@pytest.fixture(params=["ed25519", "ecdsa-p256"])
def signer(request: pytest.FixtureRequest) -> Signer:
    if request.param == "ed25519":
        return Signer(ed25519.Ed25519PrivateKey.generate())
    return Signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def layout_store(tmp_path: Path) -> LayoutStore:
    return LayoutStore(tmp_path / "oci")
