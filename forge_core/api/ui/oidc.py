"""The console's OIDC login: the authorization code flow with PKCE (RFC 7636, S256) against the
configured issuer (``auth.oidc.issuer``). The access token it yields is verified exactly as the
API verifies a bearer token; the console then keeps its own session (:mod:`.session`).

The state, the PKCE verifier and the page to return to wait in a short-lived HttpOnly cookie
between the redirect to the issuer and the callback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import Request

from forge_core.api.deps import services
from forge_core.domain.errors import ForgeError
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthenticationFailed

LOGIN_COOKIE = "forge_login"
LOGIN_SECONDS = 600


class ServiceUnavailable(ForgeError):
    """The login cannot be carried out now: no issuer configured, or it cannot be reached (503)."""

    code = "service_unavailable"


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the cookie value to set before."""

    location: str
    cookie: str


def redirect_uri(request: Request) -> str:
    public = services(request).settings.api.ui.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return f"{base}/ui/login/callback"


async def start(request: Request, next_page: str) -> Started:
    settings = services(request).settings
    endpoints = await _discovery(request)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    query = {
        "response_type": "code",
        "client_id": _client_id(request),
        "redirect_uri": redirect_uri(request),
        "scope": settings.api.ui.oidc_scopes,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    cookie = base64.urlsafe_b64encode(
        json.dumps({"state": state, "verifier": verifier, "next": next_page}).encode()
    ).decode()
    return Started(f"{endpoints['authorization_endpoint']}?{urlencode(query)}", cookie)


async def finish(request: Request, code: str, state: str, cookie: str | None) -> tuple[Principal, str]:
    """The principal the issuer vouches for, and the page to return to."""
    try:
        waiting = json.loads(base64.urlsafe_b64decode(cookie or ""))
        expected, verifier, next_page = waiting["state"], waiting["verifier"], waiting["next"]
    except (ValueError, KeyError, TypeError):
        raise AuthenticationFailed("the login was not started here (or took too long)", where="state") from None
    if not secrets.compare_digest(str(expected), state):
        raise AuthenticationFailed("the login's state does not match", where="state")
    endpoints = await _discovery(request)
    ui = services(request).settings.api.ui
    form = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(request),
        "client_id": _client_id(request), "code_verifier": str(verifier),
    }
    if ui.oidc_client_secret is not None:
        form["client_secret"] = ui.oidc_client_secret.get_secret_value()
    answer = await _call("POST", endpoints["token_endpoint"], data=form)
    return await _principal(request, answer), str(next_page)


async def _principal(request: Request, answer: dict[str, Any]) -> Principal:
    """Whom the tokens name, verified as the API verifies a bearer token: the access token when
    it is a JWT for the API's audience, else the ID token (its audience is the client)."""
    tokens = [t for t in (answer.get("access_token"), answer.get("id_token")) if isinstance(t, str)]
    if not tokens:
        raise AuthenticationFailed("the issuer answered without a token", where="token_endpoint")
    failure: AuthenticationFailed | None = None
    for token in tokens:
        try:
            return await services(request).verifier.verify(token)
        except AuthenticationFailed as failed:
            failure = failure or failed
    assert failure is not None
    raise failure


def _client_id(request: Request) -> str:
    settings = services(request).settings
    return settings.api.ui.oidc_client_id or settings.auth.oidc.client_id or settings.auth.oidc.audience


async def _discovery(request: Request) -> dict[str, str]:
    issuer = services(request).settings.auth.oidc.issuer
    if issuer is None:
        raise ServiceUnavailable(
            "no OIDC issuer is configured (FORGE_AUTH__OIDC__ISSUER): on one machine `forge ui` opens "
            "a session", where="login",
        )
    document = await _call("GET", f"{str(issuer).rstrip('/')}/.well-known/openid-configuration")
    found = {k: document.get(k) for k in ("authorization_endpoint", "token_endpoint")}
    if not all(isinstance(v, str) for v in found.values()):
        raise ServiceUnavailable("the issuer's discovery document lacks its endpoints", where=str(issuer))
    return {k: str(v) for k, v in found.items()}


async def _call(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise ServiceUnavailable(f"the OIDC issuer cannot be reached: {error}", where=url) from None
    if response.status_code >= 400:
        # The issuer's error code, never the request (it carries the code and verifier).
        try:
            reason = response.json().get("error", response.status_code)
        except ValueError:
            reason = response.status_code
        raise AuthenticationFailed(f"the OIDC issuer refused the login: {reason}", where=url)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise ServiceUnavailable("the OIDC issuer answered with something other than JSON", where=url) from None
    return body
