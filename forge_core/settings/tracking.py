"""Tracking images: where they go and the keys that sign and verify them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from forge_core.domain.tracking import DEFAULT_BUILDER_ID


class TrackingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = Field(
        default="",
        description="Where tracking images go: a registry 'host[:port]' or 'host[:port]/prefix'. "
        "Empty: the embedded OCI layout store (oci.layout_dir under state_dir).",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="PEM private key (Ed25519 or ECDSA P-256) that signs tracking images. Unset: a "
        "key generated once at <state_dir>/keys/tracking-signing.pem (its public key beside it).",
    )
    signing_key_password: SecretStr | None = Field(
        default=None, description="The password of an encrypted signing_key_file."
    )
    public_key_files: list[Path] = Field(
        default_factory=list,
        description="PEM public keys that verify tracking images (the local signing key's public key "
        "is always trusted too).",
    )
    builder_id: str = Field(default=DEFAULT_BUILDER_ID, description="The SLSA builder.id written into provenance.")
