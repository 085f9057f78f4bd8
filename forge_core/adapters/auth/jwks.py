"""The signing keys of an OIDC issuer, fetched from its JWKS and cached.

A token signed with a key id the cache does not know makes the cache refetch (key rotation), at
most once per ``min_refresh`` seconds so that garbage key ids cannot hammer the issuer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from forge_core.services.errors import AuthenticationFailed


class JwksCache:
    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        min_refresh: float = 10.0,
        max_age: float = 3600.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.jwks_url = jwks_url
        self.min_refresh, self.max_age = min_refresh, max_age
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        if time.monotonic() - self._fetched_at > self.max_age:
            await self._refresh(force=True)
        found = self._find(kid)
        if found is None:
            await self._refresh(force=False)
            found = self._find(kid)
        if found is None:
            raise AuthenticationFailed(
                f"token key id {kid!r} is not among the issuer's keys", where="Authorization"
            )
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._fetched_at < self.min_refresh:
                return
            try:
                url = self.jwks_url or await self._discover()
                response = await self.client.get(url)
                response.raise_for_status()
                document: Any = response.json()
                keys = {}
                for entry in document.get("keys", []):
                    if entry.get("use", "sig") != "sig":
                        continue
                    try:
                        key = jwt.PyJWK.from_dict(entry)
                    except jwt.PyJWTError:
                        continue  # a key type we do not use (e.g. encryption keys)
                    keys[key.key_id or ""] = key
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                raise AuthenticationFailed(
                    f"cannot fetch the signing keys of {self.issuer}: {type(exc).__name__}",
                    where="Authorization",
                ) from None
            self._keys, self._fetched_at = keys, time.monotonic()

    async def _discover(self) -> str:
        response = await self.client.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        url = response.json()["jwks_uri"]
        if not isinstance(url, str):
            raise ValueError("jwks_uri is not a string")
        self.jwks_url = url
        return url

    async def aclose(self) -> None:
        await self.client.aclose()
