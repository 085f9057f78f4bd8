"""Finding, loading and validating plugins, and the host the services use to reach them.

stevedore finds the ``forge.plugins`` entry points and imports only those the settings allow
(filtered by name before import); pluggy validates each loaded module against the hookspecs; the
registration hooks are then called once per plugin with registrars bound to it, so every name is
attributed to its plugin and distribution, and a plugin that fails leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import pluggy

from forge_core import DISTRIBUTION, __version__
from forge_core.domain.errors import (
    PluginError,
    PluginLoadError,
    PluginRequirementError,
)
from forge_core.ports import hookspecs
from forge_core.ports.registry import REGISTRARS, Family, Owner, Registration, Registry
from forge_core.settings import PluginSettings

ENTRY_POINT_GROUP = "forge.plugins"
log = logging.getLogger("forge.plugins")


class Status:
    LOADED = "loaded"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass
class PluginInfo:
    """What ``forge plugins`` and ``GET /v1/plugins`` show for one plugin."""

    id: str
    distribution: str | None
    version: str | None
    builtin: bool = False
    module: str | None = None
    status: str = Status.LOADED
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registrations: dict[str, list[str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "registrations": self.registrations,
            "commands": self.commands,
        }


def builtin_modules() -> list[tuple[str, ModuleType]]:
    """The core's own plugins; they register through the same hooks as everyone else's."""
    from forge_core.builtin import BUILTINS

    return [(name, importlib.import_module(path)) for name, path in BUILTINS]


class PluginHost:
    """The loaded plugins: the pluggy manager, the registry of names, and what each plugin did."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}

    # --- admission ---------------------------------------------------------------------------

    def admit(self, plugin: object, info: PluginInfo) -> None:
        """Validate ``plugin`` against the hookspecs and take its registrations, all or nothing.

        A conflict with an already admitted plugin raises (it is a start-up error); any other
        failure is recorded on ``info`` and the plugin is left out.
        """
        if info.id in self.plugins and self.plugins[info.id].status == Status.LOADED:
            raise PluginError(f"a plugin with id {info.id!r} is already loaded", where=info.id)
        self.plugins[info.id] = info
        try:
            self._validate(plugin, info)
            self.pm.register(plugin, name=info.id)
        except Exception as exc:
            self._fail(info, exc)
            return
        try:
            registrations = self._collect(plugin, info)
        except Exception as exc:
            self.pm.unregister(name=info.id)
            self._fail(info, exc)
            return
        try:
            self.registry.add_all(registrations)
        except PluginError:
            self.pm.unregister(name=info.id)
            info.status, info.error = Status.FAILED, "conflicts with another plugin"
            raise
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or ())
        info.registrations = _by_family(registrations)

    def _validate(self, plugin: object, info: PluginInfo) -> None:
        """Reject ``forge_*`` hook implementations that match no hookspec (a typo is never silent)."""
        unknown = sorted(
            name
            for name in dir(plugin)
            if name.startswith("forge_")
            and self.pm.parse_hookimpl_opts(plugin, name) is not None
            and not hasattr(self.pm.hook, name)
        )
        if unknown:
            raise PluginLoadError(f"implements unknown hook(s) {', '.join(unknown)}", where=info.id)

    def _collect(self, plugin: object, info: PluginInfo) -> list[Registration]:
        owner = Owner(info.id, info.distribution, info.version)
        collected: list[Registration] = []
        for hook_name, registrar_type in REGISTRARS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                registrar = registrar_type(owner)
                try:
                    impl.function(**dict.fromkeys(impl.argnames, registrar))
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginLoadError(f"{hook_name} raised {type(exc).__name__}: {exc}", where=info.id) from exc
                collected.extend(registrar.collected)
        return collected

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = Status.FAILED
        info.error = _describe(exc)
        log.warning("plugin %s failed to load: %s", info.id, info.error)

    def withdraw(self, plugin_id: str) -> None:
        """Remove a plugin and everything it registered (used by temporary registrations)."""
        self.registry.remove_plugin(plugin_id)
        if self.pm.has_plugin(plugin_id):
            self.pm.unregister(name=plugin_id)
        self.plugins.pop(plugin_id, None)

    @contextmanager
    def registered(self, plugin: object, plugin_id: str, *, distribution: str | None = None) -> Iterator[PluginInfo]:
        """Admit ``plugin`` for the duration of a ``with`` block (tests, embedded extensions)."""
        info = PluginInfo(plugin_id, distribution, None, module=getattr(plugin, "__name__", None))
        self.admit(plugin, info)
        if info.status != Status.LOADED:
            self.plugins.pop(plugin_id, None)
            raise PluginLoadError(info.error or "failed to load", where=plugin_id)
        try:
            yield info
        finally:
            self.withdraw(plugin_id)

    # --- use ---------------------------------------------------------------------------------

    def get(self, family: Family, name: str) -> Registration:
        return self.registry.get(family, name)

    def create(self, family: Family, name: str, *args: Any) -> Any:
        return self.registry.create(family, name, *args)

    def notify(self, hook_name: str, **kwargs: Any) -> list[PluginError]:
        """Call a lifecycle hook on every plugin; one that raises is logged, not propagated."""
        if hook_name not in hookspecs.LIFECYCLE_HOOKS:
            raise ValueError(f"{hook_name} is not a lifecycle hook")
        errors: list[PluginError] = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                error = PluginError(f"{hook_name} raised {type(exc).__name__}: {exc}", where=impl.plugin_name)
                log.warning("%s", error)
                errors.append(error)
        return errors

    def extend_cli(self, cli: Any) -> list[PluginError]:
        """Let every plugin add its commands; one that raises is reported, the others still count."""
        errors: list[PluginError] = []
        for impl in reversed(self.pm.hook.forge_cli_commands.get_hookimpls()):
            before = _command_names(cli)
            try:
                impl.function(**dict.fromkeys(impl.argnames, cli))
                info = self.plugins.get(impl.plugin_name)
                if info is not None:
                    info.commands = sorted(_command_names(cli) - before)
            except Exception as exc:
                errors.append(
                    PluginError(f"forge_cli_commands raised {type(exc).__name__}: {exc}", where=impl.plugin_name)
                )
        return errors

    def api_routers(self) -> list[tuple[str, Any]]:
        """(plugin id, router) for every router a plugin contributes."""
        routers: list[tuple[str, Any]] = []
        for impl in reversed(self.pm.hook.forge_api_routers.get_hookimpls()):
            contributed = cast("list[Any]", impl.function() or [])
            routers.extend((impl.plugin_name, router) for router in contributed)
        return routers

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == Status.FAILED]

    def describe(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in sorted(self.plugins.values(), key=lambda p: (not p.builtin, p.id))]


def _command_names(cli: Any) -> set[str]:
    """Names of a typer app's commands and sub-apps (a command's name defaults to its function's)."""
    names = {c.name or c.callback.__name__.replace("_", "-") for c in getattr(cli, "registered_commands", [])}
    names |= {g.name or "" for g in getattr(cli, "registered_groups", [])}
    return names


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PluginError):
        return exc.message
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _by_family(registrations: Iterable[Registration]) -> dict[str, list[str]]:
    families: dict[str, list[str]] = {}
    for reg in registrations:
        families.setdefault(reg.family.value, []).append(reg.name)
    return {k: sorted(v) for k, v in families.items()}


def installed_entry_points() -> dict[str, list[importlib.metadata.EntryPoint]]:
    """Entry points of the ``forge.plugins`` group by name (several: the same id twice)."""
    found: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if all(ep.value != other.value or ep.dist != other.dist for other in found.get(ep.name, [])):
            found.setdefault(ep.name, []).append(ep)
    return found


def load_plugins(settings: PluginSettings | None = None, *, builtins: bool = True) -> PluginHost:
    """Build the plugin host as the CLI, the API and the workers do at start.

    Raises PluginConflictError (two plugins claim a name), PluginRequirementError (a required
    plugin is missing, failed, or has the wrong version) and, in strict mode, PluginLoadError.
    """
    settings = settings or PluginSettings()
    host = PluginHost()
    if builtins:
        for plugin_id, module in builtin_modules():
            host.admit(module, PluginInfo(plugin_id, DISTRIBUTION, __version__, builtin=True, module=module.__name__))
    if settings.autoload:
        _load_entry_points(host, settings)
    _check_requirements(host, settings)
    if settings.strict and host.failures():
        failed = host.failures()
        raise PluginLoadError(
            "strict mode: plugin(s) failed to load: "
            + "; ".join(f"{p.id} ({p.distribution}): {p.error}" for p in failed),
            where=", ".join(p.id for p in failed),
            details={"plugins": [p.as_dict() for p in failed]},
        )
    return host


def _load_entry_points(host: PluginHost, settings: PluginSettings) -> None:
    from stevedore import NamedExtensionManager

    selected: list[str] = []
    for name, eps in sorted(installed_entry_points().items()):
        ep = eps[0]
        info = PluginInfo(name, _dist_name(ep), _dist_version(ep), module=ep.value)
        if len(eps) > 1:
            info.status = Status.FAILED
            info.error = "plugin id provided by several distributions: " + ", ".join(
                f"{_dist_name(e)} ({e.value})" for e in eps
            )
            host.plugins[name] = info
        elif name in settings.block:
            info.status, info.error = Status.DISABLED, "blocked by settings (plugins.block)"
            host.plugins[name] = info
        elif settings.allow is not None and name not in settings.allow:
            info.status, info.error = Status.DISABLED, "not in the allow list (plugins.allow)"
            host.plugins[name] = info
        else:
            host.plugins[name] = info
            selected.append(name)
    if not selected:
        return

    def failed(_manager: Any, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        host._fail(host.plugins[ep.name], exc)

    def missing(names: Iterable[str]) -> None:
        for name in names:  # stevedore also lists those that failed to import: keep their error
            if host.plugins[name].status != Status.FAILED:
                host._fail(host.plugins[name], PluginLoadError("entry point vanished while loading", where=name))

    # stevedore keeps a per-process list of entry points by group; plugins may have been installed
    # since it was filled (long-lived processes, tests), so start from what is installed now.
    NamedExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    manager = NamedExtensionManager(
        ENTRY_POINT_GROUP,
        names=selected,
        name_order=True,
        on_load_failure_callback=failed,
        on_missing_entrypoints_callback=missing,
    )
    for extension in manager.extensions:
        info = host.plugins.pop(extension.name)
        host.admit(extension.plugin, info)


def _dist_name(ep: importlib.metadata.EntryPoint) -> str | None:
    return ep.dist.name if ep.dist is not None else None


def _dist_version(ep: importlib.metadata.EntryPoint) -> str | None:
    return ep.dist.version if ep.dist is not None else None


def _check_requirements(host: PluginHost, settings: PluginSettings) -> None:
    problems: list[str] = []
    for requirement in settings.requirements():
        info = host.plugins.get(requirement.name) or next(
            (p for p in host.plugins.values() if p.distribution == requirement.name), None
        )
        if info is None:
            problems.append(f"{requirement} is not installed")
        elif info.status != Status.LOADED:
            problems.append(f"{requirement} is {info.status}: {info.error}")
        elif requirement.specifier and not requirement.specifier.contains(info.version or "0", prereleases=True):
            problems.append(f"{requirement} is installed at version {info.version}")
    if problems:
        raise PluginRequirementError(
            "required plugins unmet: " + "; ".join(problems),
            where=", ".join(r.name for r in settings.requirements()),
            details={"problems": problems},
        )
