"""Registry authentication: answering ``WWW-Authenticate`` challenges (distribution's token auth).

``Basic`` challenges get the credentials on every later request; ``Bearer realm=…,service=…``
challenges get a token from the realm (the credentials as basic auth there, or none for anonymous
access), cached per scope and fetched again when the registry challenges once more. Messages name
the registry and the user, never the password or a token.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import httpx

from forge_core.domain.oci import OciAuthError, OciUnavailable, RegistryCredentials

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class _Challenge:
    scheme: str  # "basic" or "bearer"
    realm: str = ""
    service: str = ""


class RegistryAuth:
    """The authentication state of one registry client."""

    def __init__(self, registry: str, credentials: RegistryCredentials | None, http: httpx.Client) -> None:
        self._registry = registry
        self._credentials = credentials
        self._http = http
        self._challenge: _Challenge | None = None
        self._tokens: dict[str, str] = {}

    def headers(self, scope: str) -> dict[str, str]:
        """The ``Authorization`` header for a request needing ``scope``, once the registry asked."""
        if self._challenge is None:
            return {}
        if self._challenge.scheme == "basic" and self._credentials:
            pair = f"{self._credentials.username}:{self._credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        token = self._tokens.get(scope)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def answer(self, response: httpx.Response, scope: str, reference: str | None) -> None:
        """Prepare to answer the 401 ``response``: remember basic auth, or fetch a bearer token."""
        scheme, _, params_text = response.headers.get("WWW-Authenticate", "").partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if scheme.lower() == "basic":
            if self._credentials is None:
                raise self._error("asks for credentials and none were given", reference)
            if self._challenge is not None and self._challenge.scheme == "basic":
                raise self.refused(reference)
            self._challenge = _Challenge("basic")
        elif scheme.lower() == "bearer" and params.get("realm"):
            self._challenge = _Challenge("bearer", params["realm"], params.get("service", ""))
            scopes = set(scope.split()) | set(params.get("scope", "").split())
            self._tokens[scope] = self._fetch_token(sorted(scopes), reference)
        else:
            raise self._error(f"asks for authentication we cannot answer: {scheme or 'no challenge'}", reference)

    def refused(self, reference: str | None) -> OciAuthError:
        who = f" of user {self._credentials.username!r}" if self._credentials else " (none were given)"
        return self._error(f"refused the credentials{who}", reference)

    def _fetch_token(self, scopes: list[str], reference: str | None) -> str:
        assert self._challenge is not None
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in scopes]
        if self._challenge.service:
            params.insert(0, ("service", self._challenge.service))
        auth = httpx.BasicAuth(self._credentials.username, self._credentials.password) if self._credentials else None
        try:
            response = self._http.get(self._challenge.realm, params=params, auth=auth)
        except httpx.TransportError as exc:
            raise OciUnavailable(
                f"the token server of {self._registry} did not answer: {type(exc).__name__}",
                registry=self._registry,
                reference=reference,
            ) from None
        if response.status_code in (401, 403):
            who = f"user {self._credentials.username!r}" if self._credentials else "anonymous access"
            raise OciAuthError(
                f"the token server of {self._registry} refused {who}", registry=self._registry, reference=reference
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if response.status_code != 200 or not isinstance(token, str):
            raise OciAuthError(
                f"the token server of {self._registry} gave no token (HTTP {response.status_code})",
                registry=self._registry,
                reference=reference,
            )
        return token

    def _error(self, message: str, reference: str | None) -> OciAuthError:
        return OciAuthError(f"registry {self._registry} {message}", registry=self._registry, reference=reference)
