"""The platform's own signing key (the embedded default's authority) and the tokens it mints."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from forge_core.domain.errors import ConfigurationError
from forge_core.settings import Settings

ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey
    kid: str
    issuer: str
    audience: str

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    def mint(
        self,
        subject: str,
        *,
        roles: Iterable[str] = (),
        permissions: Iterable[str] = (),
        ttl_seconds: int = 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "nbf": now,
            "exp": now + ttl_seconds, "jti": uuid.uuid4().hex,
            "roles": sorted(roles), "permissions": sorted(permissions), **(extra or {}),
        }
        return jwt.encode(claims, self.private, algorithm=ALGORITHM, headers={"kid": self.kid})


def load_or_create(path: Path, *, issuer: str, audience: str) -> SigningKey:
    """Read the PEM key at ``path``, generating it (mode 0600) the first time."""
    if path.exists():
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise ConfigurationError(
                f"cannot read signing key {path}: {exc}", where="FORGE_AUTH__SIGNING_KEY"
            ) from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise ConfigurationError(
                f"signing key {path} must be an EC P-256 key", where="FORGE_AUTH__SIGNING_KEY"
            )
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
    return SigningKey(private, _thumbprint(private.public_key()), issuer, audience)


def _thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 thumbprint of the public key: a stable key id."""
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def platform_key(settings: Settings) -> SigningKey:
    """The platform's key: ``FORGE_AUTH__SIGNING_KEY``, or one generated in the state directory."""
    path = settings.auth.signing_key or settings.database.state_dir / "signing-key.pem"
    auth = settings.auth
    return load_or_create(path, issuer=auth.platform_issuer, audience=auth.platform_audience)
