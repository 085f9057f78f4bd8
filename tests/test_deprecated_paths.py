"""Paths that were never public keep working, with a DeprecationWarning naming the new home."""

from __future__ import annotations

import importlib
import sys

import pytest

from forge_core.plugin.family import Family
from forge_core.plugin.registry import PublisherRegistrar


def fresh_import(name: str) -> object:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.mark.parametrize(
    ("module", "new_home"),
    [
        ("forge_core.ports.hookspecs", "forge_core.sdk"),
        ("forge_core.ports.registry", "forge_core.sdk"),
        ("forge_core.adapters.plugins", "forge_core.plugin.host"),
    ],
)
def test_old_plugin_modules_import_with_a_deprecation_warning(module: str, new_home: str) -> None:
    with pytest.warns(DeprecationWarning, match=new_home):
        fresh_import(module)


OLD = ("ports.registry", "ports.hookspecs", "adapters.plugins")


def test_old_tables_are_derived_from_the_families() -> None:
    with pytest.warns(DeprecationWarning, match="is deprecated"):
        registry, hookspecs, plugins = [fresh_import(f"forge_core.{m}") for m in OLD]
    assert registry.REGISTRARS["forge_register_publishers"] is PublisherRegistrar  # type: ignore[attr-defined]
    assert list(registry.REGISTRARS) == [f.hook for f in Family]  # type: ignore[attr-defined]
    assert hookspecs.REGISTRATION_HOOKS[0] == "forge_register_artifact_types"  # type: ignore[attr-defined]
    assert plugins.load_plugins.__module__ == "forge_core.plugin.host"  # type: ignore[attr-defined]
    from forge_core.ports import protocols

    with pytest.warns(DeprecationWarning, match="Family"):
        assert protocols.PROTOCOLS["publisher"] is protocols.Publisher  # type: ignore[attr-defined]
