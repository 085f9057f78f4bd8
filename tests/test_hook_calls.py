"""Every hook is called through pluggy: wrappers, ordering, firstresult and tracing work, and
lifecycle hooks stay isolated from each other."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from forge_core.domain.models import PipelineRunInfo, RunStatus
from forge_core.plugin.host import load_plugins
from forge_core.sdk import PublisherRegistrar, hookimpl
from forge_core.settings import PluginSettings
from forge_core.testing import PluginHost, Register

RUN = PipelineRunInfo(id="r1", repository="acme/mono", commit="a" * 40, status=RunStatus.RUNNING)


class Journal:
    def __init__(self) -> None:
        self.entries: list[str] = []


def plain(journal: Journal, label: str) -> object:
    class Plain:
        @hookimpl
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
            journal.entries.append(f"{label} {run.id}")

    return Plain()


def test_wrapper_and_tryfirst_lifecycle_hooks_run_in_order(forge_host: PluginHost, forge_register: Register) -> None:
    journal = Journal()

    class Wrapper:
        @hookimpl(wrapper=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> Generator[None, None, None]:
            journal.entries.append("wrapper before")
            yield
            journal.entries.append("wrapper after")

    class First:
        @hookimpl(tryfirst=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
            journal.entries.append("tryfirst")

    class Last:
        @hookimpl(trylast=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
            journal.entries.append("trylast")

    forge_register(First(), "acme-first")
    forge_register(Wrapper(), "acme-wrapper")
    forge_register(Last(), "acme-last")
    forge_register(plain(journal, "plain"), "acme-plain")
    assert forge_host.notify("forge_pipeline_run_started", run=RUN) == []
    assert journal.entries == ["wrapper before", "tryfirst", "plain r1", "trylast", "wrapper after"]


def test_old_style_hookwrapper_sees_the_outcome(forge_host: PluginHost, forge_register: Register) -> None:
    journal = Journal()

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> Generator[None, pluggy.Result[Any], None]:
            outcome = yield
            journal.entries.append(f"old-style saw {outcome.get_result()!r}")

    forge_register(plain(journal, "plain"), "acme-plain")
    forge_register(OldStyle(), "acme-old")
    forge_host.notify("forge_pipeline_run_started", run=RUN)
    assert journal.entries == ["plain r1", "old-style saw []"]  # pluggy keeps no None results


def test_a_raising_wrapper_is_reported_and_the_hook_still_reaches_every_plugin(
    forge_host: PluginHost, forge_register: Register
) -> None:
    journal = Journal()

    class BrokenBefore:
        @hookimpl(wrapper=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> Generator[None, None, None]:
            raise RuntimeError("metrics backend down")
            yield

    class BrokenAfter:
        @hookimpl(wrapper=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> Generator[None, None, None]:
            yield
            raise ValueError("audit log full")

    class Raising:
        @hookimpl(tryfirst=True)
        def forge_pipeline_run_started(self, run: PipelineRunInfo) -> None:
            raise KeyError("webhook")

    forge_register(plain(journal, "plain"), "acme-plain")
    forge_register(BrokenBefore(), "acme-before")
    forge_register(BrokenAfter(), "acme-after")
    forge_register(Raising(), "acme-raising")
    errors = forge_host.notify("forge_pipeline_run_started", run=RUN)
    assert journal.entries == ["plain r1"]
    assert sorted((e.where or "", str(e).split(" raised ")[1]) for e in errors) == [
        ("acme-after", "ValueError: audit log full"),
        ("acme-before", "RuntimeError: metrics backend down"),
        ("acme-raising", "KeyError: 'webhook'"),
    ]


def test_a_raising_lifecycle_hook_is_logged_with_its_plugin(
    forge_host: PluginHost, forge_register: Register, caplog: pytest.LogCaptureFixture
) -> None:
    class Raising:
        @hookimpl
        def forge_pipeline_run_finished(self, run: PipelineRunInfo) -> None:
            raise RuntimeError("chat webhook refused")

    forge_register(Raising(), "acme-chat")
    with caplog.at_level("WARNING", logger="forge.plugins"):
        forge_host.pm.hook.forge_pipeline_run_finished(run=RUN)  # called directly: still isolated
    assert "acme-chat: forge_pipeline_run_finished raised RuntimeError: chat webhook refused" in caplog.text


def test_a_registration_hook_written_as_a_wrapper_runs(forge_host: PluginHost, forge_register: Register) -> None:
    class Wrapped:
        @hookimpl(wrapper=True)
        def forge_register_publishers(self, register: PublisherRegistrar) -> Generator[None, None, None]:
            register.add("added-before", "acme:Before")
            yield
            register.add("added-after", "acme:After")

    info = forge_register(Wrapped(), "acme-wrapped")
    assert info.status == "loaded", info.error
    assert info.registrations == {"publisher": ["added-after", "added-before"]}


def test_api_routers_keep_their_plugin_and_order(forge_host: PluginHost, forge_register: Register) -> None:
    first, second = object(), object()

    class Early:
        @hookimpl(tryfirst=True)
        def forge_api_routers(self) -> list[Any]:
            return [first]

    class Late:
        @hookimpl
        def forge_api_routers(self) -> list[Any]:
            return [second]

    forge_register(Late(), "acme-late")
    forge_register(Early(), "acme-early")
    assert forge_host.api_routers() == [("acme-early", first), ("acme-late", second)]


def test_tracing_writes_one_line_per_hook_call_with_the_plugins(forge_register: Register) -> None:
    lines: list[str] = []
    host = PluginHost(trace=lines.append)
    host.admit(plain(Journal(), "one"), info := host_info("acme-one"))
    host.admit(plain(Journal(), "two"), host_info("acme-two"))
    assert info.status == "loaded"
    lines.clear()
    host.notify("forge_pipeline_run_started", run=RUN)
    assert len(lines) == 1
    assert lines[0].startswith("forge hook forge_pipeline_run_started(run) -> acme-two, acme-one [")


def host_info(plugin_id: str) -> Any:
    from forge_core.testing import PluginInfo

    return PluginInfo(plugin_id, None, None)


def test_the_trace_setting_traces_start_up_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    load_plugins(PluginSettings(autoload=False, trace=True))
    lines = capsys.readouterr().err.splitlines()
    assert "forge hook forge_register_triggers(register) -> core.triggers" in "\n".join(lines)
    assert all(line.startswith("forge hook forge_register_") for line in lines), lines


def test_forge_plugins_trace_variable_traces_every_call(run_forge: Any) -> None:
    result = run_forge("plugins", "--json", env={"FORGE_PLUGINS__TRACE": "1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["plugins"]
    traced = [line for line in result.stderr.splitlines() if line.startswith("forge hook ")]
    assert "forge hook forge_register_publishers(register) -> forge_docker" in "\n".join(traced)
    assert "forge hook forge_register_notifiers(register) -> forge_github" in "\n".join(traced)
