"""The errors of the use cases; their ``code`` is the API error code (mapped to a status there)."""

from __future__ import annotations

from forge_core.domain.errors import ForgeError


class InvalidRequest(ForgeError):
    """The request cannot be carried out as given (a bad value, an unknown environment, …)."""

    code = "invalid_request"
    exit_code = 2


class AuthenticationFailed(ForgeError):
    """No credential, or one that is not valid (signature, issuer, audience, expiry)."""

    code = "authentication_failed"
    exit_code = 5


class AuthorizationFailed(ForgeError):
    """A valid credential without the permission the operation needs."""

    code = "authorization_failed"
    exit_code = 5


class NotFound(ForgeError):
    """The entity does not exist."""

    code = "resource_not_found"
    exit_code = 6


class Conflict(ForgeError):
    """The operation clashes with existing state (a duplicate, a finished run, …)."""

    code = "resource_conflict"
    exit_code = 7
