"""The hookspecs of Catalyst Forge (pluggy project ``forge``).

Every hook is prefixed ``forge_``. Hooks may gain arguments in a minor version, never lose them;
an implementation takes only the arguments it names. ``docs/hooks.md`` documents each one and a
self-check test keeps the two in step (:func:`undocumented`).

Registration hooks (``forge_register_<family>s``) are derived from the declared families: each is
called once per plugin when the plugin manager is built (at start of the CLI, the API and each
worker), with a registrar bound to that plugin. Lifecycle hooks are notifications: every
implementation is called, and one that raises is logged and does not stop the others or the
pipeline. Extension hooks let a plugin add CLI commands and API routers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookspec

if TYPE_CHECKING:
    from forge_core.domain.models import DeploymentInfo, PipelineRunInfo, ReleaseInfo

LIFECYCLE_HOOKS: list[str] = []
EXTENSION_HOOKS: list[str] = []


def _lifecycle(spec: Callable[..., None]) -> Callable[..., None]:
    LIFECYCLE_HOOKS.append(spec.__name__)
    return hookspec(spec)


def _extension(spec: Callable[..., Any]) -> Callable[..., Any]:
    EXTENSION_HOOKS.append(spec.__name__)
    return hookspec(spec)


# --- lifecycle ------------------------------------------------------------------------------


@_lifecycle
def forge_pipeline_run_started(run: PipelineRunInfo) -> None:
    """A pipeline run has started (its status just became ``running``).

    :param run: the run, as persisted.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@_lifecycle
def forge_pipeline_run_finished(run: PipelineRunInfo) -> None:
    """A pipeline run reached a final status (``success``, ``failed`` or ``cancelled``).

    :param run: the run, as persisted, with ``finished_at`` set.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@_lifecycle
def forge_release_created(release: ReleaseInfo) -> None:
    """A release was recorded (its number assigned and its Release OCI image pushed).

    :param release: the new release.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@_lifecycle
def forge_deployment_changed(deployment: DeploymentInfo, previous: DeploymentInfo | None) -> None:
    """The active deployment of a project in an environment changed.

    :param deployment: the deployment that is now active (or whose status changed).
    :param previous: the deployment it superseded, or ``None`` for the first one.
    :returns: nothing; a raising implementation is logged and ignored.
    """


# --- extension ------------------------------------------------------------------------------


@_extension
def forge_cli_commands(cli: Any) -> None:
    """Add commands to the ``forge`` CLI.

    :param cli: the root ``typer.Typer`` application; call ``cli.command()(function)`` or
        ``cli.add_typer(sub_app, name=...)``.
    :returns: nothing.
    Called once when the CLI starts, after the plugins are loaded.
    """


@_extension
def forge_api_routers() -> list[Any]:
    """Contribute routers to the Platform API.

    :returns: a list of ``fastapi.APIRouter``; they are mounted under ``/v1/plugins/<plugin id>``.
    Called once when the API application is built.
    """
    return []


# --- registration (derived) -----------------------------------------------------------------


def registration_hookspec(family: Family) -> Callable[..., None]:
    """The hookspec of a family's registration hook: ``forge_register_<key>s(register)``."""

    def spec(register: Any) -> None:
        return None

    spec.__name__ = spec.__qualname__ = family.hook
    spec.__doc__ = family.doc
    spec.__annotations__ = {"register": family.registrar, "return": None}
    return hookspec(spec)


def registration_hooks() -> list[str]:
    """The registration hooks of the declared families, in the order they are called."""
    return [family.hook for family in Family]


def hookspecs() -> dict[str, Callable[..., Any]]:
    """Every hookspec by name: the declared families' registration hooks, then the others."""
    specs: dict[str, Callable[..., Any]] = {f.hook: registration_hookspec(f) for f in Family}
    specs.update((name, globals()[name]) for name in LIFECYCLE_HOOKS + EXTENSION_HOOKS)
    return specs


def add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Give ``pm`` every hookspec (pluggy reads the marked functions of a namespace)."""
    pm.add_hookspecs(type("ForgeHookspecs", (), {n: staticmethod(f) for n, f in hookspecs().items()}))


def heading(name: str) -> str:
    """The section heading ``docs/hooks.md`` has for a hook: ``### name(arguments)``."""
    arguments = ", ".join(inspect.signature(hookspecs()[name]).parameters)
    return f"### {name}({arguments})"


def undocumented(docs: str) -> list[str]:
    """The hooks whose ``### name(arguments)`` section is missing from ``docs`` (docs/hooks.md)."""
    return [name for name in hookspecs() if heading(name) not in docs]
