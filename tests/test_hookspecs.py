"""Self-checks (datasette style): every hookspec is documented and tested; hooks behave as documented."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forge_core.domain.models import DeploymentInfo, PipelineRunInfo, ReleaseInfo, RunStatus
from forge_core.plugin import hookspecs
from forge_core.plugin.host import PluginHost, PluginInfo
from forge_core.plugin.markers import hookimpl

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(hookspecs.hookspecs())
DOCS = (ROOT / "docs" / "hooks.md").read_text()


def test_every_hookspec_is_a_family_registration_a_lifecycle_or_an_extension_hook() -> None:
    listed = hookspecs.registration_hooks() + hookspecs.LIFECYCLE_HOOKS + hookspecs.EXTENSION_HOOKS
    assert sorted(listed) == HOOKS
    assert all(name.startswith("forge_") for name in HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_is_documented_with_its_signature(hook: str) -> None:
    spec = hookspecs.hookspecs()[hook]
    assert spec.__doc__ and ":returns:" in spec.__doc__, f"{hook} docstring must say what it returns"
    assert hook not in hookspecs.undocumented(DOCS), f"docs/hooks.md lacks a '{hookspecs.heading(hook)}' section"


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_has_a_test(hook: str) -> None:
    """Some test module implements or calls the hook by name (the lifecycle and extension hooks
    are exercised below, the registration hooks in test_registration_hooks.py)."""
    test_files = list((ROOT / "tests").rglob("test_*.py")) + list((ROOT / "plugins").glob("*/tests/test_*.py"))
    pattern = re.compile(rf"(def |\"){hook}\b")
    assert any(pattern.search(p.read_text()) for p in test_files), f"no test exercises {hook}"


# --- lifecycle hooks ----------------------------------------------------------------------------

RUN = PipelineRunInfo(id="r1", repository="acme/mono", commit="a" * 40, status=RunStatus.RUNNING)
RELEASE = ReleaseInfo(id="rel1", repository="acme/mono", project="api", number=7, commit="a" * 40)
DEPLOYMENT = DeploymentInfo(
    id="d1", environment="dev", repository="acme/mono", project="api", release_id="rel1", status="active"
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
        self.calls.append(("started", {"run": run}))

    @hookimpl
    def forge_pipeline_run_finished(self, run: PipelineRunInfo) -> None:
        self.calls.append(("finished", {"run": run}))

    @hookimpl
    def forge_release_created(self, release: ReleaseInfo) -> None:
        self.calls.append(("release", {"release": release}))

    @hookimpl
    def forge_deployment_changed(self, deployment: DeploymentInfo, previous: DeploymentInfo | None) -> None:
        self.calls.append(("deployment", {"deployment": deployment, "previous": previous}))


class Exploding:
    @hookimpl
    def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
        raise RuntimeError("webhook endpoint down")


def test_pipeline_run_started_and_finished_reach_every_plugin(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    recorder = Recorder()
    forge_register(recorder, "acme-recorder")
    assert forge_host.notify("forge_pipeline_run_started", run=RUN) == []
    finished = RUN.model_copy(update={"status": RunStatus.SUCCESS})
    forge_host.notify("forge_pipeline_run_finished", run=finished)
    assert recorder.calls == [("started", {"run": RUN}), ("finished", {"run": finished})]


def test_release_created_and_deployment_changed_carry_their_arguments(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    recorder = Recorder()
    forge_register(recorder, "acme-recorder")
    forge_host.notify("forge_release_created", release=RELEASE)
    forge_host.notify("forge_deployment_changed", deployment=DEPLOYMENT, previous=None)
    assert recorder.calls == [
        ("release", {"release": RELEASE}),
        ("deployment", {"deployment": DEPLOYMENT, "previous": None}),
    ]


def test_a_raising_lifecycle_hook_is_reported_and_the_others_still_run(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    recorder = Recorder()
    forge_register(Exploding(), "acme-exploding")
    forge_register(recorder, "acme-recorder")
    errors = forge_host.notify("forge_pipeline_run_started", run=RUN)
    assert [e.where for e in errors] == ["acme-exploding"]
    assert "webhook endpoint down" in str(errors[0])
    assert recorder.calls == [("started", {"run": RUN})]


def test_notify_refuses_a_non_lifecycle_hook(forge_host: PluginHost) -> None:
    with pytest.raises(ValueError, match="not a lifecycle hook"):
        forge_host.notify("forge_register_publishers", register=None)


# --- extension hooks ----------------------------------------------------------------------------


def test_api_routers_are_collected_with_their_plugin(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    router = object()

    class Routes:
        @hookimpl
        def forge_api_routers(self) -> list[Any]:
            return [router]

    forge_register(Routes(), "acme-routes")
    assert forge_host.api_routers() == [("acme-routes", router)]


def test_cli_commands_are_added_and_recorded_per_plugin(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    import typer

    class Commands:
        @hookimpl
        def forge_cli_commands(self, cli: typer.Typer) -> None:
            @cli.command()
            def hello() -> None:
                typer.echo("hello")

    class Broken:
        @hookimpl
        def forge_cli_commands(self, cli: typer.Typer) -> None:
            raise RuntimeError("typer too old")

    info = forge_register(Commands(), "acme-commands")
    forge_register(Broken(), "acme-broken")
    app = typer.Typer()
    errors = forge_host.extend_cli(app)
    assert info.commands == ["hello"]
    assert [e.where for e in errors] == ["acme-broken"]
