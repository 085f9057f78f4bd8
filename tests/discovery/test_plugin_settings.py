"""Settings an implementation declares are checked by discovery; so are the names and types it has."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from forge_core.adapters.git import CommitReader
from forge_core.builtin.discovery import new_discovery, resolve_event
from forge_core.domain.models import ProjectRef, StepOutcome, StepSpec, StepStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.ports.protocols import ExecutionContext
from forge_core.sdk import ProducerRegistrar, SettingsModel, StepRunnerRegistrar, hookimpl
from forge_core.services.evaluation import CueEvaluator
from forge_core.settings import PluginSettings

from .conftest import REPO_CUE, project_cue


class Retry(SettingsModel):
    attempts: int
    on_log: str | None = None


class CheckSettings(SettingsModel):
    retry: Retry | None = None
    mode: Literal["fast", "safe"] = "fast"


class CheckRunner:
    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        return StepOutcome(status=StepStatus.SUCCESS)


class ZipProducer:
    def produce(self, *args: object) -> None:
        raise AssertionError("discovery never produces")


class CheckPlugin:
    @hookimpl
    def forge_register_step_runners(self, register: StepRunnerRegistrar) -> None:
        register.add("check", CheckRunner, settings=CheckSettings)

    @hookimpl
    def forge_register_producers(self, register: ProducerRegistrar) -> None:
        register.add("zip", ZipProducer, artifact_types=["archive"])


@pytest.fixture
def host(host: PluginHost) -> PluginHost:
    host.admit(CheckPlugin(), PluginInfo("acme_check", "acme-check", "1.0"))
    return host


def messages(document: DiscoveryDocument) -> list[tuple[str, int | None, int | None, str]]:
    return [(d.file, d.line, d.column, d.message) for d in document.diagnostics]


def test_a_nested_step_setting_is_reported_at_its_key(discover, make_repo) -> None:
    body = (
        "phases: build: steps: [{\n"  # line 4
        '\tname: "c", action: "check"\n'
        "\tsettings: {\n"
        "\t\tretry: {\n"  # line 7
        "\t\t\tatempts: 2\n"  # line 8
        "\t\t}\n"
        '\t\tmode: "slow"\n'  # line 10
        "\t}\n"
        "}]\n"
    )
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    document = discover(repo)
    what = "step runner 'check' (plugin acme_check) of step 'c'"
    assert messages(document) == [
        ("a/.forge/project.cue", 7, 3, f"{what}: settings.retry.attempts: required field is missing"),
        ("a/.forge/project.cue", 8, 4,
         f"{what}: settings.retry.atempts: unknown field; expected one of: attempts, onLog"),
        ("a/.forge/project.cue", 10, 3,
         f"{what}: settings.mode: input should be 'fast' or 'safe' (got a string)"),
    ]
    assert [p.project.name for p in document.projects] == []


def test_producer_settings_unknown_missing_and_mistyped(discover, make_repo) -> None:
    body = (
        "artifacts: api: {\n"  # line 4
        '\ttype: "container"\n'
        "\tproducer: earthly: {\n"  # line 6
        '\t\timageref: "api:1"\n'  # line 7
        "\t\tos:       3\n"  # line 8
        "\t}\n"
        "}\n"
    )
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    found = {(line, message.split(": ", 1)[1]) for _, line, _, message in messages(discover(repo))}
    assert found == {
        (6, "settings.target: required field is missing"),
        (7, "settings.imageref: unknown field; expected one of: allowPrivileged, arch, archivePath, args, binary, "
            "binaryPath, ci, config, format, imagePath, imageRef, os, platforms, retries, target"),
        (8, "settings.os: input should be a valid string (got an integer)"),
    }
    assert all(m.startswith("producer 'earthly' (plugin forge_earthly) of artifact 'api': ")
               for *_, m in messages(discover(repo)))


def test_exec_producer_settings_are_reported_at_their_lines(discover, make_repo) -> None:
    body = (
        "artifacts: tool: {\n"  # line 4
        '\ttype: "binary"\n'
        "\tproducer: exec: {\n"  # line 6
        '\t\tcommand: "make"\n'
        '\t\tfiles: ["dist/tool", "../secret"]\n'  # line 8
        '\t\ttimeout: "soon"\n'  # line 9
        "\t}\n"
        "}\n"
    )
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    found = {(line, message.split(": ", 1)[1]) for _, line, _, message in messages(discover(repo))}
    assert found == {
        (8, "settings.files[1]: value error, '../secret' must be relative to the project's folder, without '..' "
            "(got a string)"),
        (9, "settings.timeout: value error, 'soon' is not a duration like '10m' or '1h30m' (got a string)"),
    }


def test_publisher_settings_in_repo_cue_are_reported_there(discover, make_repo) -> None:
    repo_cue = REPO_CUE.replace('registry: "registry.test"', 'registry: "registry.test", repositroy: "x"')
    repo = make_repo({".forge/repo.cue": repo_cue, "a/.forge/project.cue": project_cue()})
    document = discover(repo)
    column = repo_cue.splitlines()[9].index("repositroy") + 1
    assert messages(document) == [(
        ".forge/repo.cue", 10, column,
        "publisher 'docker' (plugin forge_docker) of target 'images': settings.repositroy: unknown field; "
        "expected one of: aliases, insecure, mountFrom, namespace, registry, repository",
    )]
    assert not document.ok


def test_a_producer_must_build_the_artifact_type(discover, make_repo) -> None:
    body = 'artifacts: site: {\n\ttype: "binary"\n\tproducer: zip: {}\n}\n'
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    assert messages(discover(repo)) == [(
        "a/.forge/project.cue", 6, 12, "producer 'zip' (plugin acme_check) of artifact 'site' builds archive, "
        "not 'binary'",
    )]


def test_the_example_python_package_is_built_by_the_python_producer(discover, example: Path) -> None:
    document = discover(example)
    assert document.ok, document.diagnostics
    greeting = next(p for p in document.projects if p.project.name == "greeting")
    assert [(a.spec.type, a.spec.producer, a.spec.producer_settings) for a in greeting.artifacts] == [
        ("python", "python", {"isolation": False})
    ]


# --- nothing of a family installed ----------------------------------------------------------------


def core_only_discover(evaluator: CueEvaluator, tmp_path: Path, repo: Path) -> DiscoveryDocument:
    """Discovery with the core's built-ins only: no step runner, producer or publisher at all."""
    host = load_plugins(PluginSettings(autoload=False))
    reader = CommitReader(repo)
    event = resolve_event(reader, reader.name, commit=None, branch=None, tag=None, detect=True)
    return new_discovery(host.registry, evaluator, tmp_path / "core-cache").discover(reader, event)


NONE = "none (no installed plugin registers a {}; `forge plugins` lists what is installed)"


def test_a_publisher_type_no_plugin_provides_is_named_at_its_line(evaluator, make_repo, tmp_path) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    document = core_only_discover(evaluator, tmp_path, repo)
    assert messages(document) == [
        (".forge/repo.cue", 10, 17, "unknown publisher type 'docker'; known: " + NONE.format("publisher type")),
        (".forge/repo.cue", 11, 17, "unknown publisher type 's3'; known: " + NONE.format("publisher type")),
    ]


def test_a_step_runner_and_producer_no_plugin_provides_are_named_at_their_lines(
    evaluator, make_repo, tmp_path
) -> None:
    repo_cue = REPO_CUE.split("publishers:")[0]
    body = 'artifacts: x: {type: "binary", producer: earthly: {target: "+x"}}\n'
    repo = make_repo({".forge/repo.cue": repo_cue, "a/.forge/project.cue": project_cue(body)})
    document = core_only_discover(evaluator, tmp_path, repo)
    action = project_cue().splitlines()[2].index('"earthly"') + 1
    assert messages(document) == [
        ("a/.forge/project.cue", 3, action, "unknown step action 'earthly'; known: " + NONE.format("step action")),
        ("a/.forge/project.cue", 4, 42, "unknown producer 'earthly'; known: " + NONE.format("producer")),
    ]
