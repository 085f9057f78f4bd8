"""Finding, filtering, validating and admitting plugins."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forge_core.builtin import BUILTINS
from forge_core.domain.errors import (
    PluginConflictError,
    PluginError,
    PluginLoadError,
    PluginRequirementError,
    UnknownImplementationError,
)
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo, Status, load_plugins
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import PublisherRegistrar
from forge_core.settings import PluginSettings

PUBLISHER_PLUGIN = """
from forge_core.sdk import hookimpl, PublishedLocation

class Publisher:
    def publish(self, artifact, target, ctx):
        return PublishedLocation(publisher=target.name, type=target.type, uri="mem://" + artifact.name)

@hookimpl
def forge_register_publishers(register):
    register.add("{name}", Publisher)
"""

IMPORT_MARKER = """
import json
import sys
sys.modules.setdefault("forge_probe_imported", type(sys)("forge_probe_imported"))
from forge_core.sdk import hookimpl

@hookimpl
def forge_register_publishers(register):
    register.add("probe", "x:y")
"""


@pytest.fixture
def site_with(make_distribution: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Install distributions and put their folder on sys.path for this test."""

    def install(name: str, version: str, plugin_id: str, source: str) -> Path:
        site = make_distribution(name, version, plugin_id=plugin_id, source=source)
        if str(site) not in sys.path:
            monkeypatch.syspath_prepend(str(site))
        return site

    yield install
    for name in [m for m in sys.modules if m.startswith("acme_") or m == "forge_probe_imported"]:
        del sys.modules[name]


def only(*ids: str) -> PluginSettings:
    return PluginSettings(allow=list(ids))


def test_builtins_register_through_the_hooks(forge_host: PluginHost) -> None:
    builtins = [p for p in forge_host.plugins.values() if p.builtin]
    assert {p.id for p in builtins} == {plugin_id for plugin_id, _ in BUILTINS}
    assert {"core.artifact_types", "core.triggers", "core.renderers"} <= {p.id for p in builtins}
    assert all(p.distribution == "catalyst-forge-core" and p.status == Status.LOADED for p in builtins)
    assert forge_host.registry.names(Family.TRIGGER) == ["always", "branch", "manual", "pull_request", "tag"]
    assert forge_host.plugins["core.triggers"].hooks == ["forge_register_triggers"]


def test_autoload_off_loads_only_the_builtins(forge_host: PluginHost) -> None:
    assert all(p.builtin for p in forge_host.plugins.values())
    assert "forge_docker" not in forge_host.plugins


def test_installed_plugin_is_found_with_distribution_and_version(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-mem", "2.3.1", "acme_mem", PUBLISHER_PLUGIN.format(name="mem"))
    host = load_plugins(only("acme_mem"))
    info = host.plugins["acme_mem"]
    assert (info.distribution, info.version, info.status) == ("acme-forge-mem", "2.3.1", Status.LOADED)
    assert info.registrations == {"publisher": ["mem"]}
    assert host.get(Family.PUBLISHER, "mem").owner.distribution == "acme-forge-mem"


def test_blocked_plugin_is_never_imported(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-probe", "1.0", "acme_probe", IMPORT_MARKER)
    host = load_plugins(PluginSettings(block=["acme_probe"]))
    assert "forge_probe_imported" not in sys.modules
    assert "acme_probe" not in sys.modules
    assert host.plugins["acme_probe"].status == Status.DISABLED
    assert "blocked" in (host.plugins["acme_probe"].error or "")


def test_plugin_outside_the_allow_list_is_never_imported(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-probe", "1.0", "acme_probe", IMPORT_MARKER)
    host = load_plugins(PluginSettings(allow=["forge_docker"]))
    assert "acme_probe" not in sys.modules
    assert host.plugins["acme_probe"].status == Status.DISABLED


def test_plugin_raising_at_import_is_recorded_and_others_still_load(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-broken", "0.1", "acme_broken", "raise RuntimeError('database driver missing')\n")
    site_with("acme-forge-mem", "1.0", "acme_mem", PUBLISHER_PLUGIN.format(name="mem"))
    host = load_plugins(only("acme_broken", "acme_mem"))
    broken = host.plugins["acme_broken"]
    assert broken.status == Status.FAILED
    assert "RuntimeError: database driver missing" in (broken.error or "")
    assert host.plugins["acme_mem"].status == Status.LOADED
    assert host.registry.names(Family.PUBLISHER) == ["mem"]


def test_strict_mode_makes_a_load_failure_fatal_and_names_the_plugin(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-broken", "0.1", "acme_broken", "raise ImportError('no module named grpc')\n")
    with pytest.raises(PluginLoadError) as raised:
        load_plugins(PluginSettings(allow=["acme_broken"], strict=True))
    assert "acme_broken" in str(raised.value) and "acme-forge-broken" in str(raised.value)
    assert raised.value.where == "acme_broken"


def test_same_publisher_name_from_two_plugins_names_both_distributions(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-one", "1.0", "acme_one", PUBLISHER_PLUGIN.format(name="registry"))
    site_with("acme-forge-two", "1.0", "acme_two", PUBLISHER_PLUGIN.format(name="registry"))
    with pytest.raises(PluginConflictError) as raised:
        load_plugins(only("acme_one", "acme_two"))
    message = str(raised.value)
    assert "acme-forge-one" in message and "acme-forge-two" in message and "'registry'" in message
    assert raised.value.details["distributions"] == ["acme-forge-one", "acme-forge-two"]


def test_a_plugin_may_not_claim_a_builtin_name(site_with: Callable[..., Path]) -> None:
    source = """
from forge_core.sdk import hookimpl
@hookimpl
def forge_register_triggers(register):
    register.add("branch", "acme_trig:Nope")
"""
    site_with("acme-forge-trig", "1.0", "acme_trig", source)
    with pytest.raises(PluginConflictError, match="catalyst-forge-core"):
        load_plugins(only("acme_trig"))


def test_required_plugin_missing_is_a_startup_error() -> None:
    with pytest.raises(PluginRequirementError, match="acme_absent is not installed"):
        load_plugins(PluginSettings(autoload=False, required=["acme_absent"]))


def test_required_plugin_version_range_is_checked(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-mem", "1.4.0", "acme_mem", PUBLISHER_PLUGIN.format(name="mem"))
    load_plugins(PluginSettings(allow=["acme_mem"], required=["acme_mem>=1.0,<2"]))
    with pytest.raises(PluginRequirementError, match=r"installed at version 1\.4\.0"):
        load_plugins(PluginSettings(allow=["acme_mem"], required=["acme_mem>=2"]))


def test_required_plugin_that_failed_is_a_startup_error(site_with: Callable[..., Path]) -> None:
    site_with("acme-forge-broken", "0.1", "acme_broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginRequirementError, match="acme_broken is failed"):
        load_plugins(PluginSettings(allow=["acme_broken"], required=["acme_broken"]))


def test_unknown_hook_is_a_validation_error(forge_host: PluginHost) -> None:
    class Typo:
        @hookimpl
        def forge_register_publisher(self, register: PublisherRegistrar) -> None:  # missing "s"
            raise AssertionError("never called")

    info = PluginInfo("acme-typo", None, None)
    forge_host.admit(Typo(), info)
    assert info.status == Status.FAILED
    assert "unknown hook(s) forge_register_publisher" in (info.error or "")


def test_hookimpl_with_an_argument_the_spec_lacks_is_rejected(forge_host: PluginHost) -> None:
    class Extra:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar, registry: object) -> None:
            raise AssertionError("never called")

    info = PluginInfo("acme-extra", None, None)
    forge_host.admit(Extra(), info)
    assert info.status == Status.FAILED
    assert "registry" in (info.error or "")
    assert not forge_host.pm.has_plugin("acme-extra")


def test_registration_hook_that_raises_leaves_nothing_behind(forge_host: PluginHost) -> None:
    class HalfWay:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("first", "acme:First")
            raise ValueError("credentials file unreadable")

    info = PluginInfo("acme-halfway", None, None)
    forge_host.admit(HalfWay(), info)
    assert info.status == Status.FAILED
    assert "ValueError: credentials file unreadable" in (info.error or "")
    assert "first" not in forge_host.registry.names(Family.PUBLISHER)
    assert not forge_host.pm.has_plugin("acme-halfway")


@pytest.mark.parametrize("name", ["Docker", "1st", "has space", "", "x" * 64])
def test_invalid_names_are_rejected(forge_host: PluginHost, name: str) -> None:
    class Bad:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add(name, "acme:Publisher")

    info = PluginInfo("acme-bad", None, None)
    forge_host.admit(Bad(), info)
    assert info.status == Status.FAILED
    assert "invalid publisher name" in (info.error or "")


def test_lazy_implementation_that_cannot_be_imported_names_the_plugin(
    forge_register: Callable[..., PluginInfo], forge_host: PluginHost
) -> None:
    class Lazy:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("lazy", "acme_missing_module.publisher:Publisher")

    forge_register(Lazy(), "acme-lazy")
    with pytest.raises(PluginLoadError) as raised:
        forge_host.create(Family.PUBLISHER, "lazy")
    assert raised.value.where == "acme-lazy"
    assert "acme_missing_module" in str(raised.value)


def test_implementation_without_the_protocol_method_is_rejected(
    forge_register: Callable[..., PluginInfo], forge_host: PluginHost
) -> None:
    class NotAPublisher:
        def push(self) -> None: ...

    class Wrong:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("wrong", NotAPublisher)

    forge_register(Wrong(), "acme-wrong")
    with pytest.raises(PluginError, match="does not implement Publisher"):
        forge_host.create(Family.PUBLISHER, "wrong")


def test_unknown_name_lists_the_installed_ones(forge_host: PluginHost) -> None:
    with pytest.raises(UnknownImplementationError) as raised:
        forge_host.get(Family.TRIGGER, "nightly")
    assert "installed: always, branch, manual, pull_request, tag" in str(raised.value)


def test_temporary_registration_is_withdrawn_afterwards(forge_host: PluginHost) -> None:
    class Temp:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("temp", "acme:Temp")

    with forge_host.registered(Temp(), "acme-temp") as info:
        assert info.registrations == {"publisher": ["temp"]}
        assert "temp" in forge_host.registry.names(Family.PUBLISHER)
    assert "temp" not in forge_host.registry.names(Family.PUBLISHER)
    assert "acme-temp" not in forge_host.plugins


def test_one_plugin_id_from_two_distributions_is_refused(
    make_distribution: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_distribution("acme-forge-a", "1.0", plugin_id="acme_dup", source="", module="acme_dup_a")
    make_distribution("acme-forge-b", "1.0", plugin_id="acme_dup", source="", module="acme_dup_b")
    monkeypatch.syspath_prepend(str(site))
    host = load_plugins(only("acme_dup"))
    assert host.plugins["acme_dup"].status == Status.FAILED
    assert "acme-forge-a" in (host.plugins["acme_dup"].error or "")
    assert "acme-forge-b" in (host.plugins["acme_dup"].error or "")


def test_publisher_for_an_unknown_artifact_type_fails_naming_the_plugin_and_the_type(
    forge_host: PluginHost,
) -> None:
    class Typo:
        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("shelf", "acme:Shelf", artifact_types=["archive", "tarbal"])

    info = PluginInfo("acme-typo", None, None)
    forge_host.admit(Typo(), info)
    assert info.status == Status.FAILED
    assert "publisher 'shelf' names unknown artifact type(s) tarbal; declared: archive, binary, container" in (
        info.error or ""
    )
    assert "shelf" not in forge_host.registry.names(Family.PUBLISHER)


def test_a_type_declared_by_a_plugin_loaded_later_is_known(site_with: Callable[..., Path]) -> None:
    producer = """
from forge_core.sdk import hookimpl
@hookimpl
def forge_register_producers(register):
    register.add("helm", "acme_a:Helm", artifact_types=["helm-chart"])
"""
    declares = """
from forge_core.sdk import hookimpl
@hookimpl
def forge_register_artifact_types(register):
    register.add("helm-chart")
"""
    site_with("acme-forge-a", "1.0", "acme_a", producer)
    site_with("acme-forge-b", "1.0", "acme_b", declares)
    host = load_plugins(only("acme_a", "acme_b"))
    assert host.plugins["acme_a"].status == Status.LOADED, host.plugins["acme_a"].error
    alone = load_plugins(only("acme_a"))
    assert alone.plugins["acme_a"].status == Status.FAILED
    assert "producer 'helm' names unknown artifact type(s) helm-chart" in (alone.plugins["acme_a"].error or "")
    assert "helm" not in alone.registry.names(Family.PRODUCER)


def test_a_wrapper_that_is_not_a_generator_is_a_malformed_hookimpl(forge_host: PluginHost) -> None:
    class NotAGenerator:
        @hookimpl(wrapper=True)
        def forge_pipeline_run_started(self, run: object) -> None:
            return None

    info = PluginInfo("acme-malformed", None, None)
    forge_host.admit(NotAGenerator(), info)
    assert info.status == Status.FAILED
    assert "malformed hook implementation" in (info.error or "")
    assert "not a generator function" in (info.error or "")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("@hookimpl\ndef forge_register_publisher(register):\n    pass\n", "unknown hook(s) forge_register_publisher"),
        ("@hookimpl\ndef forge_register_publishers(registrar):\n    pass\n", "'registrar'"),
        (
            "@hookimpl\ndef forge_register_publishers(register):\n    raise OSError('no config')\n",
            "forge_register_publishers raised OSError: no config",
        ),
        (
            "@hookimpl\ndef forge_register_producers(register):\n"
            "    register.add('x', 'm:X', artifact_types=['wheel'])\n",
            "producer 'x' names unknown artifact type(s) wheel",
        ),
    ],
)
def test_forge_plugins_shows_a_malformed_plugin_as_failed_with_its_problem(
    make_distribution: Callable[..., Path], run_forge: Callable[..., Any], source: str, problem: str
) -> None:
    source = "from forge_core.sdk import hookimpl\n" + source
    site = make_distribution("acme-forge-bad", "0.2", plugin_id="acme_bad", source=source)
    result = run_forge("plugins", "--json", path=site)
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout)["plugins"] if r["id"] == "acme_bad")
    assert row["status"] == "failed" and row["distribution"] == "acme-forge-bad"
    assert problem in row["error"]
    assert row["registrations"] == {}
