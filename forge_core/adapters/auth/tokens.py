"""Bearer token validation: the platform's own tokens and the OIDC issuer's (Keycloak)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt

from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.keys import ALGORITHM, SigningKey
from forge_core.services.auth import Principal, permissions_of
from forge_core.services.errors import AuthenticationFailed
from forge_core.settings.auth import AuthSettings

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
VERIFIED_CACHE_SIZE = 4096
"""Tokens whose verification is remembered (the oldest forgotten first): a client sends one
token many times, and an ES256 check costs more than the rest of a small request."""


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience and expiry; maps roles to permissions."""

    def __init__(
        self, settings: AuthSettings, signing_key: SigningKey, oidc: JwksCache | None
    ) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.oidc = oidc
        # digest of the raw token -> (principal, expiry); digests, so no token is kept in memory.
        self._verified: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The token's principal; a token verified before is trusted again until its expiry."""
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            if known[1] > time.time():
                return known[0]
            del self._verified[digest]
        principal, expires = await self._verify(token)
        self._verified[digest] = (principal, expires)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        header, claims = unverified(token)
        issuer = claims.get("iss")
        own = self.signing_key
        oidc = self.settings.oidc
        if issuer == own.issuer:
            verified = decode(token, header, own.public, [ALGORITHM], own.audience, own.issuer)
            granted = frozenset(_strings(verified.get("permissions")))
            roles = _strings(verified.get("roles"))
            permissions = permissions_of(roles, self.settings.roles) | granted
        elif self.oidc is not None and _same_issuer(issuer, self.oidc.issuer):
            key = await self.oidc.key(header.get("kid"))
            verified = decode(token, header, key, oidc.algorithms, oidc.audience, str(issuer))
            roles = keycloak_roles(verified, oidc.client_id)
            permissions = permissions_of(roles, self.settings.roles)
        else:
            raise AuthenticationFailed("token issuer is not trusted", where="Authorization")
        scope = verified.get("repository") if issuer == own.issuer else None
        principal = Principal(
            subject=str(verified["sub"]), permissions=permissions, issuer=str(issuer),
            repository=scope if isinstance(scope, str) else None,
            roles=frozenset(roles), groups=frozenset(_strings(verified.get("groups"))),
        )
        return principal, float(verified["exp"])


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification (only to choose the key; nothing is trusted yet)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"malformed token: {exc}", where="Authorization") from None
    return header, claims


def decode(
    token: str,
    header: Mapping[str, Any],
    key: Any,
    algorithms: list[str],
    audience: str,
    issuer: str,
) -> dict[str, Any]:
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in algorithms:
        raise AuthenticationFailed(
            f"token algorithm {algorithm!r} is not accepted; accepted: {', '.join(algorithms)}",
            where="Authorization",
        )
    try:
        return jwt.decode(
            token, key, algorithms=[algorithm], audience=audience, issuer=issuer,
            options={"require": REQUIRED_CLAIMS}, leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("token has expired", where="Authorization") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationFailed(
            f"token audience is not {audience!r}", where="Authorization"
        ) from None
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"invalid token: {exc}", where="Authorization") from None


def keycloak_roles(claims: Mapping[str, Any], client_id: str | None) -> list[str]:
    """Realm roles, the client's roles (``resource_access``) and a plain ``roles`` claim."""
    realm = claims.get("realm_access")
    roles = _strings(realm.get("roles")) if isinstance(realm, dict) else []
    access = claims.get("resource_access")
    if client_id and isinstance(access, dict) and isinstance(access.get(client_id), dict):
        roles += _strings(access[client_id].get("roles"))
    return roles + _strings(claims.get("roles"))


def _same_issuer(claimed: object, expected: str) -> bool:
    return isinstance(claimed, str) and claimed.rstrip("/") == expected


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
