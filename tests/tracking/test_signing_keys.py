"""The signing key from settings, or one generated once per machine under the state directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from forge_core.adapters.signing_keys import LOCAL_KEY, LOCAL_PUBLIC_KEY, load_signer, load_verifier
from forge_core.domain.errors import ConfigurationError
from forge_core.domain.tracking import IN_TOTO_MEDIA_TYPE
from forge_core.services.signing import key_id
from forge_core.settings import load_settings


def test_without_a_configured_key_one_is_generated_once_with_its_public_key_beside_it(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    assert load_verifier(settings) is None  # nothing to verify with before the first signature

    signer = load_signer(settings)
    again = load_signer(settings)

    private, public = tmp_path / LOCAL_KEY, tmp_path / LOCAL_PUBLIC_KEY
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert again.keyid == signer.keyid
    loaded = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(loaded, ed25519.Ed25519PublicKey) and key_id(loaded) == signer.keyid
    verifier = load_verifier(settings)
    assert verifier is not None and verifier.verify(signer.sign(IN_TOTO_MEDIA_TYPE, b"{}")).verified


def test_a_configured_encrypted_ecdsa_key_and_extra_public_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret-pass"),
        )
    )
    other = ed25519.Ed25519PrivateKey.generate()
    other_file = tmp_path / "other.pub"
    other_file.write_bytes(
        other.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv("FORGE_TRACKING__SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("FORGE_TRACKING__SIGNING_KEY_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("FORGE_TRACKING__PUBLIC_KEY_FILES", f'["{other_file}"]')
    settings = load_settings(state_dir=tmp_path / "state")

    signer = load_signer(settings)
    verifier = load_verifier(settings)

    assert signer.keyid == key_id(key.public_key())
    assert not (tmp_path / "state" / LOCAL_KEY).exists()  # the configured key is used, none generated
    assert verifier is not None and set(verifier.keyids) == {signer.keyid, key_id(other.public_key())}
    assert "s3cret-pass" not in repr(settings.tracking)


def test_a_wrong_password_or_a_missing_file_is_a_clear_error_without_the_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right-password"),
        )
    )
    settings = load_settings(
        state_dir=tmp_path, tracking={"signing_key_file": key_file, "signing_key_password": "wrong-password"}
    )
    with pytest.raises(ConfigurationError) as caught:
        load_signer(settings)
    assert caught.value.where == str(key_file) and "wrong-password" not in str(caught.value)

    missing = load_settings(state_dir=tmp_path, tracking={"signing_key_file": tmp_path / "nope.pem"})
    with pytest.raises(ConfigurationError, match="cannot read key file") as caught:
        load_signer(missing)
    assert caught.value.where == "FORGE_TRACKING__SIGNING_KEY_FILE"
