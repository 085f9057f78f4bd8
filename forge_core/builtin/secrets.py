"""The built-in secret providers: ``env`` (a variable of the worker's environment) and ``file``
(a file under the folder ``FORGE_SECRETS__FILE__DIR``).

With a ``key``, the value is read as a document and the key selects one of its top-level fields:
JSON for ``env``; for ``file`` by the file's suffix (``.json``, ``.yaml``/``.yml``, ``.env``),
JSON otherwise. Errors name the provider, the secret name and the key, never a value.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forge_core.domain.errors import SecretError
from forge_core.domain.models import SecretRef
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import SecretProviderRegistrar

RESERVED_PREFIX = "FORGE_"
"""The platform's own settings (database URL, API token, storage keys) are never a secret a
repository's configuration can ask for."""


@hookimpl
def forge_register_secret_providers(register: SecretProviderRegistrar) -> None:
    register.add("env", EnvSecretProvider, description="A variable of the worker's environment")
    register.add("file", FileSecretProvider, description="A file under the secrets folder (FORGE_SECRETS__FILE__DIR)")


def _named(provider: str, ref: SecretRef) -> str:
    key = f", key {ref.key!r}" if ref.key is not None else ""
    return f"{provider} secret {ref.path!r}{key}"


def _field(provider: str, ref: SecretRef, document: Any, kind: str) -> str:
    """The ``ref.key`` field of a parsed document, as text."""
    if not isinstance(document, dict):
        raise SecretError(f"{_named(provider, ref)}: the value is not a {kind} object, so it has no keys")
    if ref.key not in document:
        raise SecretError(f"{_named(provider, ref)}: no such key (keys: {', '.join(sorted(map(str, document)))})")
    value = document[ref.key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SecretError(f"{_named(provider, ref)}: the key holds a {type(value).__name__}, not a string")
    return str(value)


class EnvSecretProvider:
    """``secretName`` is the name of an environment variable of the worker."""

    def __init__(self, options: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        # The worker's own environment unless given (the provider's job is reading it).
        self._environ = os.environ if environ is None else environ

    def resolve(self, ref: SecretRef) -> str:
        if ref.path.upper().startswith(RESERVED_PREFIX):
            raise SecretError(
                f"{_named('env', ref)}: variables named {RESERVED_PREFIX}* are the platform's own settings "
                "and never given out as secrets"
            )
        value = self._environ.get(ref.path)
        if value is None:
            raise SecretError(f"{_named('env', ref)}: the worker has no such environment variable")
        if ref.key is None:
            return value
        try:
            document = json.loads(value)
        except ValueError:
            raise SecretError(f"{_named('env', ref)}: the value is not JSON, so it has no keys") from None
        return _field("env", ref, document, "JSON")


class FileSecretProvider:
    """``secretName`` is a path relative to the secrets folder; a path leaving it is refused. The
    whole file is the value (one trailing line break removed)."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        folder = (options or {}).get("dir")
        self._root = Path(folder).resolve() if folder else None

    def resolve(self, ref: SecretRef) -> str:
        if self._root is None:
            raise SecretError(f"{_named('file', ref)}: no secrets folder is configured (set FORGE_SECRETS__FILE__DIR)")
        path = (self._root / ref.path).resolve()  # symbolic links followed, then checked
        if Path(ref.path).is_absolute() or not path.is_relative_to(self._root):
            raise SecretError(f"{_named('file', ref)}: the path leaves the secrets folder")
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SecretError(f"{_named('file', ref)}: no such file in the secrets folder") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"{_named('file', ref)}: cannot read it ({type(exc).__name__})") from None
        if ref.key is None:
            return text.removesuffix("\n").removesuffix("\r")
        return _field("file", ref, self._parse(ref, path, text), _kind(path))

    def _parse(self, ref: SecretRef, path: Path, text: str) -> Any:
        import yaml
        from dotenv import dotenv_values

        kind = _kind(path)
        try:
            if kind == "YAML":
                return yaml.safe_load(text)
            if kind == ".env":
                return dotenv_values(stream=io.StringIO(text))
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:  # named by type only: a message may quote the text
            raise SecretError(f"{_named('file', ref)}: the file is not valid {kind} ({type(exc).__name__})") from None


def _kind(path: Path) -> str:
    if path.suffix in (".yaml", ".yml"):
        return "YAML"
    if path.suffix == ".env" or path.name == ".env":
        return ".env"
    return "JSON"
