"""Registry credentials from a call's secrets: ``username`` and ``password``, both or neither."""

from __future__ import annotations

from collections.abc import Mapping

from forge_core.sdk import ConfigurationError, RegistryCredentials


def registry_credentials(
    secrets: Mapping[str, str], *, where: str, field: str = "credentials"
) -> RegistryCredentials | None:
    username, password = secrets.get("username"), secrets.get("password")
    if username is None and password is None:
        return None
    if username is None or password is None:
        given = "username" if username is not None else "password"
        raise ConfigurationError(
            f"{field}: registry credentials need both 'username' and 'password'; only {given!r} is given", where=where
        )
    return RegistryCredentials(username, password)
