"""A family is declared once; its hook, registry entries, listing, discovery names, documentation
check and contract base all follow from that declaration."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest
from typer.testing import CliRunner

from forge_core import sdk
from forge_core.plugin import hookspecs
from forge_core.plugin.family import Family, declare, withdraw
from forge_core.plugin.host import load_plugins
from forge_core.plugin.registry import ImplementationRegistrar
from forge_core.services.discovery import installed_names
from forge_core.settings import PluginSettings
from forge_core.testing.contracts import PluginContract, PublisherContract, contract_for

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "hooks.md").read_text()


@runtime_checkable
class Widget(Protocol):
    def spin(self, turns: int) -> str: ...


class WidgetRegistrar(ImplementationRegistrar):
    """Register widgets."""


WIDGET_PLUGIN = """
from forge_core.sdk import hookimpl

class Spinner:
    def spin(self, turns):
        return "spun " * turns

@hookimpl
def forge_register_widgets(register):
    register.add("spinner", Spinner, description="Spins")
"""


@pytest.fixture
def widget() -> Iterator[Family]:
    family = declare(
        Family(
            "widget",
            registrar=WidgetRegistrar,
            protocol=Widget,
            cue="#WidgetType",
            doc="Register widgets.\n\n    :param register: a WidgetRegistrar.\n    :returns: nothing.\n",
        )
    )
    yield family
    withdraw(family)


@pytest.fixture
def widget_site(
    widget: Family, make_distribution: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    site = make_distribution("acme-forge-widgets", "1.0.0", plugin_id="acme_widgets", source=WIDGET_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_widgets", None)


def test_a_declared_family_gets_its_registration_hook(widget: Family) -> None:
    assert widget.hook == "forge_register_widgets"
    assert hookspecs.registration_hooks()[-1] == "forge_register_widgets"
    assert Family.WIDGET is widget and Family.named("widget") is widget and list(Family)[-1] is widget
    assert widget.registrar.family is widget


def test_a_declared_family_is_registered_listed_and_found_by_discovery(widget_site: Path, widget: Family) -> None:
    host = load_plugins(PluginSettings(allow=["acme_widgets"]))
    info = host.plugins["acme_widgets"]
    assert (info.status, info.registrations) == ("loaded", {"widget": ["spinner"]})
    assert info.hooks == ["forge_register_widgets"]
    assert host.create(widget, "spinner").spin(2) == "spun spun "
    assert installed_names(host.registry)["#WidgetType"] == ["spinner"]


def test_forge_plugins_lists_a_declared_family(widget_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forge_core.cli.main import app, core_commands

    core_commands()
    monkeypatch.setenv("FORGE_PLUGINS__ALLOW", "acme_widgets")
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)["plugins"]}
    assert rows["acme_widgets"]["registrations"] == {"widget": ["spinner"]}


def test_the_documentation_check_flags_a_family_until_it_is_documented(widget: Family) -> None:
    assert hookspecs.undocumented(DOCS) == ["forge_register_widgets"]
    documented = DOCS + "\n### forge_register_widgets(register)\n\nRegister widgets.\n"
    assert hookspecs.undocumented(documented) == []


def test_a_declared_family_has_a_contract_base(widget_site: Path, widget: Family, tmp_path: Path) -> None:
    base = contract_for(widget)
    assert issubclass(base, PluginContract) and base.family is widget
    assert contract_for(Family.PUBLISHER) is PublisherContract

    class TestWidgets(base):  # type: ignore[misc, valid-type]
        plugin_id = "acme_widgets"
        distribution = "acme-forge-widgets"
        names = ("spinner",)

        def case(self, name: str, tmp_path: Path) -> tuple[int]:
            return (3,)

        def check(self, name: str, result: Any, case: Any, host: Any) -> None:
            assert result == "spun " * case[0]

    contract = TestWidgets()
    host = load_plugins(PluginSettings(allow=["acme_widgets"]))
    contract.test_entry_point_installed_and_loads(host)
    contract.test_registers_declared_names(host)
    contract.test_implementations_satisfy_protocol(host, tmp_path)
    contract.test_behaviour(host, tmp_path)


def test_without_its_declaration_the_hook_is_unknown(widget_site: Path, widget: Family) -> None:
    withdraw(widget)
    host = load_plugins(PluginSettings(allow=["acme_widgets"]))
    assert host.plugins["acme_widgets"].status == "failed"
    assert "unknown hook(s) forge_register_widgets" in (host.plugins["acme_widgets"].error or "")
    declare(widget)  # the fixture withdraws it again


def test_the_sdk_exports_every_core_family_registrar_and_protocol() -> None:
    for family in Family:
        assert getattr(sdk, family.registrar.__name__) is family.registrar
        if family.protocol is not None:
            assert getattr(sdk, family.protocol.__name__) is family.protocol
