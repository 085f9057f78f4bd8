"""Resolving secret references, and the ExecutionContext built from exactly what was resolved.

A publisher gets its own target's credentials, a step its own secrets: nothing else of the
worker's. Each provider is created on first use with its own settings only; every value resolved
is masked in the log output of the context it is given to.

    secrets = ProviderSecrets(host.registry, settings.secrets)
    resolved = secrets.resolve(target.credentials, owner=f"publisher target {target.name!r}")
    ctx = execution_context(resolved, workdir=work, log=sink.write_line, stop=job_ctx.stop)
    publisher.publish(artifact, target, ctx)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from forge_core.domain.errors import ForgeError, SecretError
from forge_core.domain.models import PublishTarget, SecretRef
from forge_core.domain.secrets import ResolvedSecrets
from forge_core.plugin.family import Family
from forge_core.plugin.registry import Registry
from forge_core.ports.contexts import ExecutionContext
from forge_core.ports.protocols import SecretProvider
from forge_core.settings.secrets import SecretsSettings


def target_owner(target: PublishTarget) -> str:
    """How errors name a publisher target."""
    return f"publisher target {target.name!r}"


class ProviderSecrets:
    """Resolves references through the registry's secret providers (the SecretResolver port)."""

    def __init__(self, registry: Registry, settings: SecretsSettings | None = None) -> None:
        self._registry = registry
        self._settings = settings or SecretsSettings()
        self._providers: dict[str, SecretProvider] = {}
        self._lock = threading.Lock()  # handler threads share one worker's providers

    def resolve(self, refs: Mapping[str, SecretRef], *, owner: str) -> ResolvedSecrets:
        """Exactly the values of ``refs``, by the same names; the first that cannot be resolved
        raises SecretError naming ``owner``, the credential, the provider, the secret and the key."""
        return ResolvedSecrets({name: self._resolve(name, ref, owner) for name, ref in refs.items()})

    def resolve_target(self, target: PublishTarget) -> ResolvedSecrets:
        """A publisher target's credentials."""
        return self.resolve(target.credentials, owner=target_owner(target))

    def _provider(self, name: str) -> SecretProvider:
        with self._lock:
            provider = self._providers.get(name)
            if provider is None:
                provider = self._registry.create(Family.SECRET_PROVIDER, name, self._settings.options(name))
                self._providers[name] = provider
            return provider

    def _resolve(self, name: str, ref: SecretRef, owner: str) -> str:
        key = f", key {ref.key!r}" if ref.key is not None else ""
        which = f"credential {name!r} (provider {ref.provider!r}, secret {ref.path!r}{key})"
        details: dict[str, object] = {"credential": name, "provider": ref.provider, "secret": ref.path, "key": ref.key}
        try:
            value = self._provider(ref.provider).resolve(ref)
        except SecretError as exc:  # the provider's message names its secret already
            raise SecretError(f"credential {name!r}: {exc.message}", where=owner, details=details) from None
        except ForgeError as exc:  # an unknown provider, or one whose plugin cannot create it
            raise SecretError(f"{which}: {exc}", where=owner, details=details) from None
        except Exception as exc:  # a provider's bug: its plugin is named, the resolution fails
            plugin = self._registry.get(Family.SECRET_PROVIDER, ref.provider).owner.plugin
            raise SecretError(
                f"{which}: provider of plugin {plugin} raised {type(exc).__name__}: {exc}",
                where=owner, details={**details, "plugin": plugin},
            ) from None
        if not isinstance(value, str):
            plugin = self._registry.get(Family.SECRET_PROVIDER, ref.provider).owner.plugin
            raise SecretError(
                f"{which}: provider of plugin {plugin} returned {type(value).__name__}, not a string",
                where=owner, details={**details, "plugin": plugin},
            )
        return value


def execution_context(
    resolved: ResolvedSecrets,
    *,
    workdir: Path,
    log: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    **fields: Any,
) -> ExecutionContext:
    """The context of one step, producer or publisher call: ``resolved`` as its secrets, and its
    log masking exactly those values before ``log`` (which stores the line) sees it. ``fields``
    are the other ExecutionContext fields (timeout, stop, heartbeat, storage, oci)."""

    def masked(line: str) -> None:
        log(resolved.mask(line))

    return ExecutionContext(
        workdir=workdir, env=dict(env or {}), secrets=dict(resolved.values), log=masked, **fields
    )
