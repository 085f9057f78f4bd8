"""The plugin test kit: a pytest plugin, opt-in.

Enable it with ``pytest -p forge_core.testing`` (or ``addopts`` in your pytest configuration;
install ``catalyst-forge-core[testing]``). It gives fixtures for a plugin host with autoload off
and for temporary registration, and the contract classes in :mod:`forge_core.testing.contracts`
that a plugin subclasses to prove it conforms. The fixtures' types are exported here:

    from forge_core.testing import PluginHost

    def test_registers_docker(forge_installed_host: PluginHost) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from forge_core.plugin.host import PluginHost, PluginInfo, Status, load_plugins
from forge_core.settings import PluginSettings

pytest_plugins = ["forge_core.testing.registry", "forge_core.testing.platform"]  # OCI registry, Platform API

__all__ = ["PluginHost", "PluginInfo", "Register", "Status"]

Register = Callable[..., PluginInfo]
"""The ``forge_register`` fixture: ``forge_register(plugin, "id", distribution=None) -> PluginInfo``."""


@pytest.fixture
def forge_host() -> PluginHost:
    """A plugin host with autoload off: only the core's built-ins are loaded."""
    return load_plugins(PluginSettings(autoload=False))


@pytest.fixture
def forge_installed_host() -> PluginHost:
    """A plugin host as the CLI builds it, with every installed plugin loaded."""
    return load_plugins(PluginSettings())


@pytest.fixture
def forge_register(forge_host: PluginHost) -> Iterator[Register]:
    """Register a plugin object into ``forge_host`` until the test ends: ``forge_register(obj, "id")``."""
    registered: list[str] = []

    def register(plugin: object, plugin_id: str = "test-plugin", *, distribution: str | None = None) -> PluginInfo:
        info = PluginInfo(plugin_id, distribution, None, module=getattr(plugin, "__name__", None))
        forge_host.admit(plugin, info)
        registered.append(plugin_id)
        return info

    yield register
    for plugin_id in reversed(registered):
        forge_host.withdraw(plugin_id)
