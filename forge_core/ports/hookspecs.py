"""Deprecated: the hookspecs live in :mod:`forge_core.plugin.hookspecs` (plugins import
``hookimpl`` from :mod:`forge_core.sdk`). Kept so that code importing this path still works."""

from __future__ import annotations

import warnings
from typing import Any

from forge_core.plugin import hookspecs as _hookspecs
from forge_core.plugin.hookspecs import (
    EXTENSION_HOOKS,
    LIFECYCLE_HOOKS,
    forge_api_routers,
    forge_cli_commands,
    forge_deployment_changed,
    forge_pipeline_run_finished,
    forge_pipeline_run_started,
    forge_release_created,
)
from forge_core.plugin.markers import PROJECT, hookimpl, hookspec

warnings.warn(
    "forge_core.ports.hookspecs is deprecated: import hookimpl from forge_core.sdk "
    "(the hookspecs are in forge_core.plugin.hookspecs)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "EXTENSION_HOOKS",
    "LIFECYCLE_HOOKS",
    "PROJECT",
    "forge_api_routers",
    "forge_cli_commands",
    "forge_deployment_changed",
    "forge_pipeline_run_finished",
    "forge_pipeline_run_started",
    "forge_release_created",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    """The registration hookspecs and their list, derived from the declared families."""
    if name == "REGISTRATION_HOOKS":
        return tuple(_hookspecs.registration_hooks())
    if name.startswith("forge_register_") and name in _hookspecs.hookspecs():
        return _hookspecs.hookspecs()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
