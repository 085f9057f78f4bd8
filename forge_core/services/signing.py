"""DSSE signatures over tracking images' provenance: Ed25519 or ECDSA P-256, verified offline.

A key's ``keyid`` is the SHA-256 (hex) of its public key's DER (SubjectPublicKeyInfo), so a
verifier picks the right public key without trying them all. ECDSA signs deterministically
(RFC 6979): the same statement signed twice gives the same envelope, so a re-run makes the same
tracking image digest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.tracking import DsseEnvelope, DsseSignature, pae

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ecdsa() -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def _check_private(key: object, where: str) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ConfigurationError(f"unsupported key type {type(key).__name__}: use Ed25519 or ECDSA P-256", where=where)


def _check_public(key: object, where: str) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ConfigurationError(f"unsupported key type {type(key).__name__}: use Ed25519 or ECDSA P-256", where=where)


def load_public_key(pem: bytes, where: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(f"cannot load the public key: {exc}", where=where) from None
    return _check_public(key, where)


class Signer:
    """Signs DSSE envelopes with one private key."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = _check_private(private_key, "signing key")
        self.public_key: PublicKey = self._key.public_key()
        self.keyid = key_id(self.public_key)

    @classmethod
    def from_pem(cls, pem: bytes, *, password: str | None = None, where: str = "signing key") -> Signer:
        try:
            key = serialization.load_pem_private_key(pem, password.encode() if password else None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # The message of a wrong password never holds the password itself.
            raise ConfigurationError(f"cannot load the private key: {exc}", where=where) from None
        return cls(_check_private(key, where))

    def sign(self, payload_type: str, payload: bytes) -> DsseEnvelope:
        message = pae(payload_type, payload)
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            signature = self._key.sign(message)
        else:
            signature = self._key.sign(message, _ecdsa())
        return DsseEnvelope(
            payload_type=payload_type,
            payload=base64.b64encode(payload).decode(),
            signatures=(DsseSignature(keyid=self.keyid, sig=base64.b64encode(signature).decode()),),
        )

    def verifier(self) -> Verifier:
        return Verifier([self.public_key])


@dataclass(frozen=True)
class Verification:
    """``verified`` True (a trusted key signed it), False (no trusted key's signature holds)."""

    verified: bool
    keyid: str | None
    reason: str


class Verifier:
    """Verifies DSSE envelopes against a set of trusted public keys, offline."""

    def __init__(self, public_keys: Iterable[PublicKey]) -> None:
        self._keys = {key_id(key): key for key in public_keys}

    @classmethod
    def from_pems(cls, pems: Iterable[tuple[bytes, str]]) -> Verifier:
        """From ``(pem, where)`` pairs; ``where`` (a file name) names a key that does not load."""
        return cls(load_public_key(pem, where) for pem, where in pems)

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def verify(self, envelope: DsseEnvelope) -> Verification:
        message = pae(envelope.payload_type, envelope.payload_bytes())
        for signature in envelope.signatures:
            candidates = [self._keys[signature.keyid]] if signature.keyid in self._keys else list(self._keys.values())
            raw = base64.b64decode(signature.sig)
            for key in candidates:
                try:
                    if isinstance(key, ed25519.Ed25519PublicKey):
                        key.verify(raw, message)
                    else:
                        key.verify(raw, message, _ecdsa())
                except InvalidSignature:
                    continue
                return Verification(True, key_id(key), f"signed by key {key_id(key)[:16]}")
        named = ", ".join(s.keyid[:16] or "(no keyid)" for s in envelope.signatures)
        if not any(s.keyid in self._keys for s in envelope.signatures):
            return Verification(False, None, f"signed by key {named}, which is not a trusted key")
        return Verification(False, None, f"the signature of key {named} does not match the payload")
