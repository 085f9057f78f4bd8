"""Finding, loading, validating and calling plugins: the host the services use to reach them.

stevedore loads the ``forge.plugins`` entry points the settings allow (filtered by name before
import, load failures recorded); pluggy validates each loaded plugin against the hookspecs and
calls every hook. Registration hooks are called once per plugin, through a hook caller limited
to that plugin, with registrars bound to it, so every name is attributed to its plugin and
distribution and a plugin that fails leaves nothing behind. Lifecycle hooks are called for all
plugins at once, each implementation isolated (:mod:`forge_core.plugin.isolation`).
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from forge_core import DISTRIBUTION, __version__
from forge_core.domain.errors import PluginError, PluginLoadError, PluginRequirementError
from forge_core.plugin import families
from forge_core.plugin.builtins import BUILTINS
from forge_core.plugin.family import Family
from forge_core.plugin.hookspecs import LIFECYCLE_HOOKS, add_hookspecs, hookspecs
from forge_core.plugin.isolation import isolated
from forge_core.plugin.markers import PROJECT
from forge_core.plugin.registry import Owner, Registration, Registry
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


class _Hooks:
    """What pluggy registers for a plugin: its hook implementations, the lifecycle ones isolated."""

    def __init__(self, plugin: object, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.plugin = plugin
        for name, function in functions.items():
            setattr(self, name, function)


Writer = Callable[[str], None]


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


class PluginHost:
    """The loaded plugins: the pluggy manager, the registry of names, and what each plugin did.

    ``trace`` (a writer of lines, or True for stderr) traces every hook call, one line each.
    """

    def __init__(self, *, trace: Writer | bool = False) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        add_hookspecs(self.pm)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        self._reported: contextvars.ContextVar[list[PluginError] | None] = contextvars.ContextVar(
            "forge_hook_errors", default=None
        )
        if trace:
            self.trace(_stderr if trace is True else trace)

    # --- admission ---------------------------------------------------------------------------

    def admit(self, plugin: object, info: PluginInfo, *, check_types: bool = True) -> None:
        """Validate ``plugin`` against the hookspecs and take its registrations, all or nothing.

        A conflict with an already admitted plugin raises (it is a start-up error); any other
        failure is recorded on ``info`` and the plugin is left out. ``check_types=False`` leaves
        the artifact-type check to :meth:`check_artifact_types` (once every plugin is in).
        """
        if info.id in self.plugins and self.plugins[info.id].status == Status.LOADED:
            raise PluginError(f"a plugin with id {info.id!r} is already loaded", where=info.id)
        self.plugins[info.id] = info
        try:
            self.pm.register(_Hooks(plugin, self._implementations(plugin, info)), name=info.id)
        except Exception as exc:
            self._fail(info, exc)
            return
        try:
            registrations = self._collect(info)
            if check_types:
                self._check_types(registrations, info.id)
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
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(self.pm.get_plugin(info.id)) or ())
        info.registrations = _by_family(registrations)

    def _implementations(self, plugin: object, info: PluginInfo) -> dict[str, Callable[..., Any]]:
        """The plugin's hook implementations; one that matches no hookspec is an error (a typo is
        never silent)."""
        known = hookspecs()
        found: dict[str, Callable[..., Any]] = {}
        unknown: list[str] = []
        for name in dir(plugin):
            if self.pm.parse_hookimpl_opts(plugin, name) is None:
                continue
            if name not in known:
                unknown.append(name)
                continue
            function = getattr(plugin, name)
            found[name] = isolated(function, name, info.id, self._report) if name in LIFECYCLE_HOOKS else function
        if unknown:
            raise PluginLoadError(f"implements unknown hook(s) {', '.join(unknown)}", where=info.id)
        return found

    def _collect(self, info: PluginInfo) -> list[Registration]:
        owner = Owner(info.id, info.distribution, info.version)
        collected: list[Registration] = []
        for family in Family:
            if not self._implements(info.id, family.hook):
                continue
            registrar = family.registrar(owner)
            try:
                self._call_one(family.hook, info.id, register=registrar)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginLoadError(f"{family.hook} raised {type(exc).__name__}: {exc}", where=info.id) from exc
            collected.extend(registrar.collected)
        return collected

    def _check_types(self, registrations: Sequence[Registration], plugin_id: str) -> None:
        """Producers and publishers may only name artifact types some plugin declares."""
        declared = set(self.registry.names(families.ARTIFACT_TYPE))
        declared |= {r.name for r in registrations if r.family == families.ARTIFACT_TYPE}
        for reg in registrations:
            unknown = sorted(set(reg.options.get("artifact_types", ())) - declared)
            if unknown:
                raise PluginLoadError(
                    f"{reg.family.label} {reg.name!r} names unknown artifact type(s) {', '.join(unknown)}; "
                    f"declared: {', '.join(sorted(declared)) or 'none'}",
                    where=plugin_id,
                    details={"family": reg.family.value, "name": reg.name, "unknown": unknown},
                )

    def check_artifact_types(self) -> None:
        """Take out every loaded plugin whose producers or publishers name an undeclared type."""
        for info in [p for p in self.plugins.values() if p.status == Status.LOADED]:
            registrations = self.registry.of_plugin(info.id)
            try:
                self._check_types(registrations, info.id)
            except PluginLoadError as exc:
                self.registry.remove_plugin(info.id)
                self.pm.unregister(name=info.id)
                info.registrations, info.hooks = {}, []
                self._fail(info, exc)

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

    # --- calling hooks -----------------------------------------------------------------------

    def _implements(self, plugin_id: str, hook: str) -> bool:
        return any(impl.plugin_name == plugin_id for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def _implementers(self, hook: str) -> list[str]:
        """Plugins implementing ``hook``, in pluggy's calling order."""
        return [impl.plugin_name for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls())]

    def _call_one(self, hook: str, plugin_id: str, **kwargs: Any) -> Any:
        """Call ``hook`` through pluggy on one plugin only (its own wrappers included)."""
        mine = self.pm.get_plugin(plugin_id)
        others = [p for p in self.pm.get_plugins() if p is not mine]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)

    def _report(self, hook: str, plugin_id: str, exc: BaseException) -> None:
        error = PluginError(f"{hook} raised {type(exc).__name__}: {exc}", where=plugin_id)
        log.warning("%s", error)
        reported = self._reported.get()
        if reported is not None:
            reported.append(error)

    def notify(self, hook_name: str, **kwargs: Any) -> list[PluginError]:
        """Call a lifecycle hook on every plugin; the errors of those that raised are returned
        (and logged), the others still ran."""
        if hook_name not in LIFECYCLE_HOOKS:
            raise ValueError(f"{hook_name} is not a lifecycle hook")
        errors: list[PluginError] = []
        token = self._reported.set(errors)
        try:
            getattr(self.pm.hook, hook_name)(**kwargs)
        finally:
            self._reported.reset(token)
        return errors

    def extend_cli(self, cli: Any) -> list[PluginError]:
        """Let every plugin add its commands; one that raises is reported, the others still count."""
        errors: list[PluginError] = []
        for plugin_id in self._implementers("forge_cli_commands"):
            before = _command_names(cli)
            try:
                self._call_one("forge_cli_commands", plugin_id, cli=cli)
            except Exception as exc:
                errors.append(PluginError(f"forge_cli_commands raised {type(exc).__name__}: {exc}", where=plugin_id))
                continue
            info = self.plugins.get(plugin_id)
            if info is not None:
                info.commands = sorted(_command_names(cli) - before)
        return errors

    def api_routers(self) -> list[tuple[str, Any]]:
        """(plugin id, router) for every router a plugin contributes."""
        routers: list[tuple[str, Any]] = []
        for plugin_id in self._implementers("forge_api_routers"):
            for contributed in self._call_one("forge_api_routers", plugin_id):
                routers.extend((plugin_id, router) for router in contributed or [])
        return routers

    def trace(self, write: Writer) -> Callable[[], None]:
        """Write one line per hook call (hook, plugins called, duration, outcome); returns an undo."""

        def before(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
            starts.append(time.perf_counter())

        def after(
            outcome: pluggy.Result[object], hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
        ) -> None:
            elapsed = (time.perf_counter() - starts.pop()) * 1000
            called = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
            raised = f" raised {type(outcome.exception).__name__}" if outcome.exception else ""
            write(f"forge hook {hook}({', '.join(kwargs)}) -> {called} [{elapsed:.1f} ms]{raised}")

        starts: list[float] = []
        return self.pm.add_hookcall_monitoring(before, after)

    # --- use ---------------------------------------------------------------------------------

    def get(self, family: Family, name: str) -> Registration:
        return self.registry.get(family, name)

    def create(self, family: Family, name: str, *args: Any) -> Any:
        return self.registry.create(family, name, *args)

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
    if isinstance(exc, pluggy.PluginValidationError):
        return "malformed hook implementation: " + " ".join(str(exc).split())
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _by_family(registrations: Iterable[Registration]) -> dict[str, list[str]]:
    by_family: dict[str, list[str]] = {}
    for reg in registrations:
        by_family.setdefault(reg.family.value, []).append(reg.name)
    return {k: sorted(v) for k, v in by_family.items()}


# --- loading -----------------------------------------------------------------------------------


def installed_entry_points() -> dict[str, list[importlib.metadata.EntryPoint]]:
    """Entry points of the ``forge.plugins`` group by name (several: the same id twice), read
    afresh (so a long-lived process sees plugins installed since it started)."""
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
    host = PluginHost(trace=settings.trace)
    if builtins:
        for plugin_id, module_name in BUILTINS:
            module = importlib.import_module(module_name)
            info = PluginInfo(plugin_id, DISTRIBUTION, __version__, builtin=True, module=module_name)
            host.admit(module, info, check_types=False)
    if settings.autoload:
        _load_entry_points(host, settings)
    host.check_artifact_types()
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

    listing = installed_entry_points()
    selected: list[str] = []
    for name, eps in sorted(listing.items()):
        ep = eps[0]
        info = PluginInfo(name, _dist_name(ep), _dist_version(ep), module=ep.value)
        host.plugins[name] = info
        if len(eps) > 1:
            info.status = Status.FAILED
            info.error = "plugin id provided by several distributions: " + ", ".join(
                f"{_dist_name(e)} ({e.value})" for e in eps
            )
        elif name in settings.block:
            info.status, info.error = Status.DISABLED, "blocked by settings (plugins.block)"
        elif settings.allow is not None and name not in settings.allow:
            info.status, info.error = Status.DISABLED, "not in the allow list (plugins.allow)"
        else:
            selected.append(name)
    if not selected:
        return

    class Loader(NamedExtensionManager[object]):
        """stevedore's loader over this host's listing (read once, above, with distributions)."""

        def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
            return [eps[0] for eps in listing.values()]

    def failed(_manager: Any, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        host._fail(host.plugins[ep.name], exc)

    manager = Loader(
        ENTRY_POINT_GROUP,
        names=selected,
        name_order=True,
        on_load_failure_callback=failed,
        on_missing_entrypoints_callback=None,
    )
    for extension in manager.extensions:
        info = host.plugins.pop(extension.name)
        host.admit(extension.plugin, info, check_types=False)


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
