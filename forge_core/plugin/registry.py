"""The registry of named implementations, and the typed registrars the ``register`` hooks receive.

One plugin may register several names per family; the name is what users write as ``type:`` (or
``action:``) in CUE. An implementation is a zero-argument factory (usually a class) or a lazy
``"module:attribute"`` path, imported on first use so a plugin's heavy dependencies cost nothing
until a pipeline needs them. Each registrar is bound to its family by the family's declaration
(:mod:`forge_core.plugin.families`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from forge_core.domain.errors import (
    NotImplementedInThisVersion,
    PluginConflictError,
    PluginError,
    PluginLoadError,
    UnknownImplementationError,
)
from forge_core.plugin.family import Family

if TYPE_CHECKING:
    from pydantic import BaseModel

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

Factory = Callable[[], object]


@dataclass(frozen=True)
class Owner:
    """Which plugin (and distribution) a registration came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.distribution:
            return f"{self.plugin} (distribution {self.distribution} {self.version or ''})".replace(" )", ")")
        return self.plugin


@dataclass(frozen=True)
class Registration:
    """One named implementation of one family."""

    family: Family
    name: str
    owner: Owner
    target: Factory | str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Factory:
        """The factory, importing it first if it was registered as a ``module:attribute`` path."""
        if self.target is None:
            raise PluginError(f"{self.family.label} {self.name!r} has no implementation", where=self.owner.plugin)
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attribute = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attribute.split(".") if attribute else ():
                obj = getattr(obj, part)
        except Exception as exc:  # an import of plugin code can raise anything
            raise PluginLoadError(
                f"cannot load {self.family.label} {self.name!r} from {self.target!r}: "
                f"{type(exc).__name__}: {exc}",
                where=self.owner.plugin,
            ) from exc
        if not callable(obj):
            raise PluginLoadError(
                f"{self.family.label} {self.name!r}: {self.target!r} is not callable", where=self.owner.plugin
            )
        return obj  # type: ignore[no-any-return]

    def create(self, *args: Any) -> Any:
        """A new instance (the factory called with ``args``: a secret provider gets its
        settings), checked against the family's protocol.

        Its protocol method reports a :class:`NotImplementedInThisVersion` raised without an
        origin as coming from this registration (family, name and plugin filled in).
        """
        instance = self.load()(*args)
        protocol, method = self.family.protocol, self.family.method
        if protocol is None or method is None:
            return instance
        if not isinstance(instance, protocol):
            raise PluginError(
                f"{self.family.label} {self.name!r} does not implement {protocol.__name__} "
                f"(missing method {method!r})",
                where=self.owner.plugin,
            )
        bound = getattr(instance, method)

        @functools.wraps(bound)
        def attributed(*args: Any, **kwargs: Any) -> Any:
            try:
                return bound(*args, **kwargs)
            except NotImplementedInThisVersion as exc:
                exc.attribute(self.family.label, self.name, self.owner.plugin)
                raise

        with contextlib.suppress(AttributeError, TypeError):  # __slots__: its errors stay as raised
            setattr(instance, method, attributed)
        return instance


class Registry:
    """Every registered implementation, by family and name. A name is taken at most once."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Registration]] = {}

    def add_all(self, registrations: Iterable[Registration]) -> None:
        """Add a plugin's registrations all together, or none of them if one conflicts."""
        batch = list(registrations)
        for reg in batch:
            taken = self._entries.get(reg.family, {}).get(reg.name)
            if taken is not None:
                raise PluginConflictError(
                    f"{reg.family.label} {reg.name!r} is registered by both {taken.owner.describe()} "
                    f"and {reg.owner.describe()}; block one of them (FORGE_PLUGINS__BLOCK)",
                    where=reg.owner.plugin,
                    details={
                        "family": reg.family.value,
                        "name": reg.name,
                        "distributions": [taken.owner.distribution, reg.owner.distribution],
                        "plugins": [taken.owner.plugin, reg.owner.plugin],
                    },
                )
        for reg in batch:
            self._entries.setdefault(reg.family, {})[reg.name] = reg

    def remove_plugin(self, plugin: str) -> None:
        for entries in self._entries.values():
            for name in [n for n, r in entries.items() if r.owner.plugin == plugin]:
                del entries[name]

    def get(self, family: Family, name: str) -> Registration:
        """The registration, or an error listing the names that are installed."""
        try:
            return self._entries[family][name]
        except KeyError:
            installed = ", ".join(self.names(family)) or "none"
            raise UnknownImplementationError(
                f"unknown {family.label} {name!r}; installed: {installed}",
                details={"family": family.value, "name": name, "installed": self.names(family)},
            ) from None

    def create(self, family: Family, name: str, *args: Any) -> Any:
        return self.get(family, name).create(*args)

    def names(self, family: Family) -> list[str]:
        return sorted(self._entries.get(family, {}))

    def __contains__(self, key: tuple[Family, str]) -> bool:
        family, name = key
        return name in self._entries.get(family, {})

    def all(self) -> list[Registration]:
        return [r for f in Family for _, r in sorted(self._entries.get(f, {}).items())]

    def of_plugin(self, plugin: str) -> list[Registration]:
        return [r for r in self.all() if r.owner.plugin == plugin]


class Registrar:
    """Base of the objects handed to ``forge_register_*`` hooks; collects one plugin's names.

    Each family has a registrar class of its own (its declaration binds ``family``); its typed
    ``add(...)`` is what an IDE shows a plugin author.
    """

    family: ClassVar[Family]

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.collected: list[Registration] = []

    def _add(self, name: str, target: Factory | str | None, description: str, **options: Any) -> None:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginLoadError(
                f"invalid {self.family.label} name {name!r}: use lower case letters, digits, '-' and '_', "
                "starting with a letter",
                where=self.owner.plugin,
            )
        if any(r.name == name for r in self.collected):
            raise PluginLoadError(
                f"{self.family.label} {name!r} registered twice by the same plugin", where=self.owner.plugin
            )
        if target is not None and not (callable(target) or (isinstance(target, str) and ":" in target)):
            raise PluginLoadError(
                f"{self.family.label} {name!r}: implementation must be a factory or a 'module:attribute' "
                f"path, got {target!r}",
                where=self.owner.plugin,
            )
        self.collected.append(Registration(self.family, name, self.owner, target, description, options))

    def _settings(self, name: str, schema: type[BaseModel] | None) -> dict[str, Any]:
        """The ``settings=`` option: a pydantic model class (the schema of the implementation's
        settings, checked by discovery), or nothing."""
        if schema is None:
            return {}
        from forge_core.domain.plugin_settings import is_settings_schema  # pydantic, on first use only

        if not is_settings_schema(schema):
            raise PluginLoadError(
                f"{self.family.label} {name!r}: settings= must be a pydantic model class "
                f"(forge_core.sdk.SettingsModel), got {schema!r}",
                where=self.owner.plugin,
            )
        return {"settings": schema}


class ImplementationRegistrar(Registrar):
    """A registrar for families whose implementations need only a name, a factory and a
    description; a new family subclasses it (one class per family)."""

    def add(self, name: str, factory: Factory | str, *, description: str = "") -> None:
        """Register an implementation under ``name``."""
        self._add(name, factory, description)


class ArtifactTypeRegistrar(Registrar):
    def add(self, name: str, *, description: str = "") -> None:
        """Declare an artifact type (``container``, ``binary``, ``archive``, ``python``, …)."""
        self._add(name, None, description)


class ProducerRegistrar(Registrar):
    def add(
        self,
        name: str,
        factory: Factory | str,
        *,
        artifact_types: Sequence[str],
        description: str = "",
        settings: type[BaseModel] | None = None,
    ) -> None:
        """Register a producer kind (the key under ``producer:`` in CUE), the artifact types it makes
        and the schema of its settings (what the kind's key holds)."""
        if isinstance(artifact_types, str) or not artifact_types:
            raise PluginLoadError(
                f"producer {name!r} declares no artifact types (give a list of names)", where=self.owner.plugin
            )
        self._add(name, factory, description, artifact_types=tuple(artifact_types), **self._settings(name, settings))


class PublisherRegistrar(Registrar):
    def add(
        self,
        name: str,
        factory: Factory | str,
        *,
        artifact_types: Sequence[str] = (),
        description: str = "",
        settings: type[BaseModel] | None = None,
    ) -> None:
        """Register a publisher ``type``; ``artifact_types`` limits what it accepts (empty: any);
        ``settings`` is the schema of a target's settings (its keys besides type and credentials)."""
        if isinstance(artifact_types, str):
            raise PluginLoadError(
                f"publisher {name!r}: artifact_types must be a list of names, got {artifact_types!r}",
                where=self.owner.plugin,
            )
        self._add(name, factory, description, artifact_types=tuple(artifact_types), **self._settings(name, settings))


class StepRunnerRegistrar(Registrar):
    def add(
        self, name: str, factory: Factory | str, *, description: str = "", settings: type[BaseModel] | None = None
    ) -> None:
        """Register a step ``action`` (``earthly``, ``exec``, …) and the schema of a step's ``settings``."""
        self._add(name, factory, description, **self._settings(name, settings))


class JobHandlerRegistrar(Registrar):
    def add(self, job_type: str, factory: Factory | str, *, description: str = "") -> None:
        """Register the handler for a job type (``discovery``, ``ci``, ``deployment``, …)."""
        self._add(job_type, factory, description)


class TriggerRegistrar(ImplementationRegistrar):
    def add(self, name: str, factory: Factory | str, *, description: str = "") -> None:
        """Register a release trigger ``type`` (``branch``, ``tag``, …)."""
        self._add(name, factory, description)


class RendererRegistrar(ImplementationRegistrar):
    def add(self, name: str, factory: Factory | str, *, description: str = "") -> None:
        """Register a renderer of deploy resources."""
        self._add(name, factory, description)


class NotifierRegistrar(ImplementationRegistrar):
    def add(self, name: str, factory: Factory | str, *, description: str = "") -> None:
        """Register a notifier of commit statuses (``github``, …); the operator selects one with
        ``FORGE_API__NOTIFIER__TYPE``."""
        self._add(name, factory, description)


class SecretProviderRegistrar(Registrar):
    def add(self, name: str, factory: Factory | str, *, description: str = "") -> None:
        """Register a secret provider, the ``provider:`` of a secret reference in CUE (``env``,
        ``file``, …); ``factory(options)`` receives the provider's own settings."""
        method = self.family.method
        if isinstance(factory, type) and method and not callable(getattr(factory, method, None)):
            raise PluginLoadError(
                f"secret provider {name!r}: {factory.__name__} does not implement SecretProvider "
                f"(missing method {method!r})",
                where=self.owner.plugin,
            )
        self._add(name, factory, description)
