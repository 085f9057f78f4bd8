"""Registry credentials from a call's secrets, read by the core's one rule for publisher logins
(:func:`forge_core.sdk.login_from_secrets`): ``repo.cue``'s one reference (``default``) holding
``user:password`` or a token alone, or ``username`` and ``password`` named."""

from __future__ import annotations

from collections.abc import Mapping

from forge_core.sdk import (
    REGISTRY_TOKEN_USERNAME,
    ConfigurationError,
    LoginError,
    RegistryCredentials,
    login_from_secrets,
)


def registry_credentials(
    secrets: Mapping[str, str], *, where: str, field: str = "credentials"
) -> RegistryCredentials | None:
    try:
        login = login_from_secrets(secrets, token_username=REGISTRY_TOKEN_USERNAME)
    except LoginError as error:
        raise ConfigurationError(f"{field}: {error}", where=where) from None
    return RegistryCredentials(*login) if login else None
