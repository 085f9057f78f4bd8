"""``forge inspect REF``: its output and exit codes (verified 0, unverified 1, bad reference 2)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from forge_core.adapters.oci import embedded_store
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.adapters.signing_keys import load_signer
from forge_core.domain.tracking import TrackingMetadata
from forge_core.services.signing import Signer
from forge_core.services.tracking import create_tracking_image
from forge_core.settings import load_settings
from forge_core.testing.registry import RegistryServer

from .conftest import BINARY_DIGEST, COMMIT, RUN_ID

Forge = Callable[..., subprocess.CompletedProcess[str]]
SHORT = f"monorepo/cli/acmectl:sha-{COMMIT}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _inspect(run_forge: Forge, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_forge("inspect", *args, env={"FORGE_STATE_DIR": str(state)})


def _create(state: Path, metadata: TrackingMetadata, sbom: bytes, signer: Signer | str | None = "local") -> str:
    settings = load_settings(state_dir=state)
    chosen = load_signer(settings) if signer == "local" else signer
    assert not isinstance(chosen, str)
    return create_tracking_image(embedded_store(settings.oci), metadata, sbom, chosen).digest


def test_a_signed_image_in_the_embedded_store_is_shown_and_verifies(
    run_forge: Forge, state: Path, metadata: TrackingMetadata, sbom: bytes
) -> None:
    digest = _create(state, metadata, sbom)

    result = _inspect(run_forge, state, SHORT)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert digest in out and COMMIT in out and RUN_ID in out
    assert "acmectl (binary) of project cli in acme/monorepo" in out
    assert f"releases (s3): s3://acme-releases/cli/acmectl {BINARY_DIGEST}" in out
    assert "planned         github (github)" in out
    assert f"invocation {RUN_ID}" in out and f"git+acme/monorepo@{COMMIT}" in out
    assert "CycloneDX 1.6: 1 components (1 files)" in out
    assert "signature       verified" in out


def test_json_output_and_the_layout_reference_form(
    run_forge: Forge, state: Path, metadata: TrackingMetadata, sbom: bytes
) -> None:
    digest = _create(state, metadata, sbom)

    result = _inspect(run_forge, state, "--json", f"oci-layout:{state}/oci/monorepo/cli/acmectl:sha-{COMMIT}")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["digest"] == digest
    assert data["metadata"]["commit"] == COMMIT and data["metadata"]["run_id"] == RUN_ID
    assert data["provenance"]["predicate"]["runDetails"]["metadata"]["invocationId"] == RUN_ID
    assert data["sbom"]["spec_version"] == "1.6"
    assert data["signature"]["verified"] is True


def test_a_registry_reference(
    run_forge: Forge, state: Path, metadata: TrackingMetadata, sbom: bytes, oci_registry: RegistryServer
) -> None:
    signer = load_signer(load_settings(state_dir=state))
    metadata = metadata.model_copy(update={"project": "inspectcli"})
    image = create_tracking_image(RegistryStore(oci_registry.address), metadata, sbom, signer)

    result = _inspect(run_forge, state, f"{oci_registry.address}/monorepo/inspectcli/acmectl:sha-{COMMIT}")

    assert result.returncode == 0, result.stderr
    assert image.digest in result.stdout and "signature       verified" in result.stdout


@pytest.mark.parametrize("signer", [None, "stranger"])
def test_unsigned_or_signed_by_an_untrusted_key_exits_1(
    run_forge: Forge, state: Path, metadata: TrackingMetadata, sbom: bytes, signer: str | None
) -> None:
    load_signer(load_settings(state_dir=state))  # the machine's own key exists and is trusted
    chosen = Signer(ed25519.Ed25519PrivateKey.generate()) if signer else None
    _create(state, metadata, sbom, chosen)

    result = _inspect(run_forge, state, SHORT)

    assert result.returncode == 1
    assert "signature       NOT VERIFIED" in result.stdout
    assert ("not signed" if signer is None else "not a trusted key") in result.stdout


def test_a_signed_image_with_no_key_to_check_it_says_so(
    run_forge: Forge, state: Path, tmp_path: Path, metadata: TrackingMetadata, sbom: bytes
) -> None:
    _create(state, metadata, sbom, Signer(ed25519.Ed25519PrivateKey.generate()))

    result = _inspect(run_forge, state, SHORT)

    assert result.returncode == 0
    assert "not checked" in result.stdout and "no public key configured" in result.stderr


@pytest.mark.parametrize(
    "reference",
    ["monorepo/cli/acmectl", "127.0.0.1:5000/Bad Name:sha-x", "oci-layout:", f"monorepo/cli/acmectl:{'x' * 200}"],
)
def test_a_bad_reference_exits_2(run_forge: Forge, state: Path, reference: str) -> None:
    result = _inspect(run_forge, state, reference)

    assert result.returncode == 2, result.stdout + result.stderr
    assert any(word in result.stderr for word in ("bad reference", "bad tag", "bad repository name 'Bad Name'"))
    assert "components of [a-z0-9._-]" in result.stderr or "Bad Name" not in reference


def test_a_malformed_or_missing_image_exits_1_naming_it(
    run_forge: Forge, state: Path, metadata: TrackingMetadata, sbom: bytes
) -> None:
    settings = load_settings(state_dir=state)
    store = embedded_store(settings.oci)
    _create(state, metadata, sbom)
    store.push_blob("monorepo/cli/acmectl", b"{}", "application/vnd.oci.empty.v1+json")
    from forge_core.domain.oci import Manifest

    store.push_manifest("monorepo/cli/acmectl", Manifest(artifact_type="application/vnd.example"), tags=["other"])

    malformed = _inspect(run_forge, state, "monorepo/cli/acmectl:other")
    missing = _inspect(run_forge, state, f"monorepo/cli/nothing:sha-{COMMIT}")

    assert malformed.returncode == 1 and "artifactType 'application/vnd.example'" in malformed.stderr
    assert "monorepo/cli/acmectl:other" in malformed.stderr
    assert missing.returncode == 1 and f"monorepo/cli/nothing:sha-{COMMIT}" in missing.stderr
