"""Console sessions: who is looking, through the API's own authorization.

A session is a platform token (signed by the platform key, expiring with the session) kept in an
HttpOnly cookie; every request verifies it with the API's :class:`TokenVerifier` and applies the
API's repository scope (:func:`forge_core.api.scope.enforce`), so the console can show and do
exactly what the same principal could through ``/v1``. It starts from a verified identity: an
OIDC login (:mod:`forge_core.api.ui.oidc`) or, on one machine, a short-lived login link minted by
``forge ui`` / ``forge run --ui`` (:data:`LOGIN_PURPOSE`).

Actions are protected by a synchronizer token derived from the session token (HMAC), so a page
of another site can neither read nor forge it; the token is checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from forge_core.adapters.auth.tokens import unverified
from forge_core.api import scope
from forge_core.api.deps import services
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthenticationFailed, AuthorizationFailed

SESSION_COOKIE = "forge_session"
LOGIN_PURPOSE = "forge-console-login"
"""The ``purpose`` claim of a login link's token: an ordinary API token is never accepted in a URL."""
LOGIN_LINK_SECONDS = 300
CSRF_FIELD = "csrf"


class LoginRequired(Exception):
    """No session, or an expired or invalid one: pages redirect to the login, fragments get 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Session:
    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        """The synchronizer token of this session (the same on every page of it)."""
        return hmac.new(self.token.encode(), b"forge-console-csrf", hashlib.sha256).hexdigest()

    def check_csrf(self, given: str | None) -> None:
        if not given or not hmac.compare_digest(given, self.csrf):
            raise AuthorizationFailed(
                "the form's CSRF token is missing or wrong (reload the page and try again)", where=CSRF_FIELD
            )


async def current(request: Request) -> Session:
    """The request's session, verified and scoped like an API call (LoginRequired without one)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("not logged in")
    app = services(request)
    try:
        principal = await app.verifier.verify(token)
    except AuthenticationFailed as failed:
        raise LoginRequired(f"the session ended: {failed.message}") from None
    await scope.enforce(request, principal, app.store)
    return Session(principal, token)


CurrentSession = Annotated[Session, Depends(current)]


def session_token(request: Request, principal: Principal) -> str:
    """A session token for ``principal``: its permissions, roles, groups and repository scope."""
    app = services(request)
    extra: dict[str, object] = {"groups": sorted(principal.groups), "forge_console": True}
    if principal.repository is not None:
        extra["repository"] = principal.repository
    return app.verifier.signing_key.mint(
        principal.subject,
        roles=principal.roles,
        permissions=principal.permissions,
        ttl_seconds=app.settings.api.ui.session_ttl_seconds,
        extra=extra,
    )


async def principal_of_login_link(request: Request, token: str) -> Principal:
    """The principal a ``forge ui`` login link names; refused unless it is such a link."""
    principal = await services(request).verifier.verify(token)
    _, claims = unverified(token)  # verified just above: reading its claims is safe now
    if claims.get("purpose") != LOGIN_PURPOSE:
        raise AuthenticationFailed("not a console login link (forge ui makes one)", where="token")
    return principal


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=services(request).settings.api.ui.session_ttl_seconds,
        path="/ui", httponly=True, secure=secure_cookies(request), samesite="lax",
    )


def secure_cookies(request: Request) -> bool:
    """Secure everywhere but plain http on a loopback address (a browser would never send it back)."""
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
