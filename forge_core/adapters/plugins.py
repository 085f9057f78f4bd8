"""Deprecated: plugin loading lives in :mod:`forge_core.plugin.host` (tests use the fixtures and
types of :mod:`forge_core.testing`). Kept so that code importing this path still works."""

from __future__ import annotations

import warnings

from forge_core.plugin.host import (
    ENTRY_POINT_GROUP,
    PluginHost,
    PluginInfo,
    Status,
    installed_entry_points,
    load_plugins,
)

warnings.warn(
    "forge_core.adapters.plugins is deprecated: use forge_core.plugin.host "
    "(plugin tests: the fixtures and types of forge_core.testing)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["ENTRY_POINT_GROUP", "PluginHost", "PluginInfo", "Status", "installed_entry_points", "load_plugins"]
