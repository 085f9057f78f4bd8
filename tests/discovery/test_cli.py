"""``forge validate`` and ``forge discover`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import forge_core.plugin.host as plugins
from forge_core.cli.main import app, core_commands

from .conftest import REPO_CUE, project_cue, with_exec


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run ``forge ARGS`` in-process; installed plugins plus the test ``exec`` runner."""
    monkeypatch.setenv("FORGE_CUE__CACHE_DIR", str(tmp_path / "cli-cache"))
    monkeypatch.setenv("COLUMNS", "200")
    load = plugins.load_plugins

    monkeypatch.setattr(plugins, "load_plugins", lambda settings: with_exec(load(settings)))
    core_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_discover_json_on_the_tagged_example(forge, example: Path) -> None:
    result = forge("discover", str(example), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [g["group"] for g in document["groups"]] == [1, 2, 3]
    releases = {p["project"]["name"]: p["release"] for p in document["projects"]}
    assert set(releases) == {"acmectl", "api", "docs", "greeting"}
    assert releases["api"]["release"] is True
    assert releases["api"]["reason"]
    assert all(r["reason"] for r in releases.values())
    assert all(p["artifacts"][0]["publishers"] for p in document["projects"])
    feature = json.loads(forge("discover", str(example), "--branch", "feature-x", "--json").stdout)
    assert [p["release"]["release"] for p in feature["projects"]] == [False] * 4


def test_discover_prints_a_readable_tree(forge, example: Path) -> None:
    result = forge("discover", str(example))
    assert result.exit_code == 0, result.output
    for text in ("group 1: test, validate", "api/test", "unit: exec python3 -m unittest", "release 1.2.0",
                 "artifact acmectl binary, exec → github-releases (github), artifact-bucket (s3)",
                 "deploy: Deployment/api, Network/api"):
        assert text in result.stdout


def test_validate_reports_every_broken_project_and_fails(forge, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "good/.forge/project.cue": project_cue(),
        "one/.forge/project.cue": project_cue(
            'phases: build: steps: [{name: "u", action: "earthly", timeout: "soon"}]\n'
        ),
        "two/.forge/project.cue": "package project\n\nphases: {\n",
    })
    result = forge("validate", str(repo))
    assert result.exit_code == 2
    assert "one/.forge/project.cue:4:" in result.stderr
    assert "'soon' is not a duration" in result.stderr
    assert "two/.forge/project.cue:3:10: expected" in result.stderr
    assert "2 error(s)" in result.stderr


def test_validate_checks_the_files_on_disk_and_commit_checks_a_commit(forge, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    assert forge("validate", str(repo)).exit_code == 0
    (repo / "a/.forge/project.cue").write_text(project_cue("colour: 1\n"))
    (repo / "b/.forge").mkdir(parents=True)
    (repo / "b/.forge/project.cue").write_text("package project\nphases: nope: steps: []\n")
    edited = forge("validate", str(repo))
    assert edited.exit_code == 2
    assert "a/.forge/project.cue:4:1: colour: field not allowed" in edited.stderr
    assert "b/.forge/project.cue:2:9: unknown phase (not in repo.cue) 'nope'" in edited.stderr
    assert forge("validate", str(repo), "--commit", "HEAD").exit_code == 0


def test_validate_accepts_the_example(forge, example: Path) -> None:
    result = forge("validate", str(example))
    assert result.exit_code == 0, result.output
    assert "4 project(s) valid" in result.stdout


def test_a_bad_ref_is_a_clean_error(forge, example: Path) -> None:
    result = forge("discover", str(example), "--commit", "no-such-branch")
    assert result.exit_code == 2
    assert "no commit 'no-such-branch'" in result.stderr


def test_validate_reports_a_mistyped_publisher_setting_at_its_line(forge, example: Path) -> None:
    repo_cue = example / ".forge/repo.cue"
    lines = repo_cue.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if 'namespace: "acme"' in text)
    lines[line - 1] = lines[line - 1].replace("namespace:", "namespaec:")
    repo_cue.write_text("\n".join(lines) + "\n")
    result = forge("validate", str(example))
    assert result.exit_code == 2
    assert (
        f".forge/repo.cue:{line}:3: publisher 'docker' (plugin forge_docker) of target 'container-registry': "
        "settings.namespaec: unknown field; "
        "expected one of: aliases, insecure, mountFrom, namespace, registry, repository"
    ) in result.stderr
    assert "1 error(s)" in result.stderr


def test_validate_renders_deploy_resources_and_names_each_schema_error(forge, example: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = example / "services/api/.forge/project.cue"
    text = project.read_text()
    text = text.replace("replicas: 2", 'replicas: "two"').replace('hostname: "orders"', 'hostname: "orders"\n'
                                                                  "\t\t\tcolour:   \"blue\"")
    project.write_text(text)
    result = forge("validate", str(example))
    assert result.exit_code == 2, result.output
    assert ("services/api/.forge/project.cue: deploy.resources[0] (Deployment/api) spec.replicas: "
            "'two' is not of type 'integer'") in result.stderr
    assert ("services/api/.forge/project.cue: deploy.resources[1] (Network/api) spec.colour: "
            "unknown field (not in the schema)") in result.stderr
    assert "2 error(s)" in result.stderr
    monkeypatch.setenv("FORGE_RENDER__KUBERNETES_VERSION", "1.2")
    unsupported = forge("validate", str(example))
    assert unsupported.exit_code == 2
    assert "FORGE_RENDER__KUBERNETES_VERSION: Value error, Kubernetes version '1.2' is not supported" in \
        unsupported.stderr
