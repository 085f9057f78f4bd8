"""The example monorepo discovered end to end: plan, artifacts, publishers, releases, resources."""

from __future__ import annotations

import json
from pathlib import Path

from forge_core.domain.plan import DiscoveryDocument

from .conftest import git


def test_tagged_commit_plans_every_project_and_releases_only_the_tagged_one(discover, example: Path) -> None:
    document = discover(example)
    assert document.diagnostics == ()
    assert document.event.tag == "api/v1.2.0"
    assert [p.project.name for p in document.projects] == ["acmectl", "api", "docs", "greeting"]
    assert [(g.group, [p.name for p in g.phases]) for g in document.groups] == [
        (1, ["test", "validate"]), (2, ["build"]), (3, ["package"])
    ]
    tasks = {t.id: t for g in document.groups for t in g.tasks}
    assert set(tasks) == {
        "acmectl/test", "api/test", "greeting/test", "acmectl/validate", "api/validate", "docs/validate",
        "greeting/validate", "acmectl/build", "api/build", "docs/build", "greeting/build",
        "acmectl/package", "api/package",
    }
    unit = tasks["api/test"].steps[0]
    assert (unit.action, unit.target, unit.timeout.total_seconds()) == (
        "exec", "python3 -m unittest discover -s tests", 120
    )
    assert tasks["docs/build"].timeout.total_seconds() == 15 * 60  # the phase's timeout from repo.cue
    releases = {p.project.name: p.release for p in document.projects}
    assert releases["api"].release
    assert releases["api"].version == "1.2.0"
    assert "api/v1.2.0" in releases["api"].reason
    for name in ("acmectl", "docs", "greeting"):
        assert not releases[name].release
        assert releases[name].reason.startswith("no trigger fired")
    assert "not a release tag of this project" in releases["greeting"].reason


def test_artifacts_publishers_and_deploy_resources(discover, example: Path) -> None:
    document = discover(example)
    plans = {p.project.name: p for p in document.projects}
    kinds = {a.spec.type: [(p.name, p.type) for p in a.publishers] for plan in plans.values() for a in plan.artifacts}
    assert kinds == {
        "container": [("container-registry", "docker")],
        "python": [("package-index", "pypi")],
        "binary": [("github-releases", "github"), ("artifact-bucket", "s3")],
        "archive": [("artifact-bucket", "s3")],
    }
    api = plans["api"].artifacts[0]
    assert api.spec.producer == "container"
    assert api.spec.producer_settings["base"] == "scratch"
    assert api.spec.producer_settings["layers"] == [{"files": {"app.py": "/app/app.py"}}]
    # produced without Earthly or Docker: a command's files, a command's folder archived, python -m build
    producers = {a.spec.name: (a.spec.producer, a.spec.producer_settings) for p in plans.values() for a in p.artifacts}
    assert producers["acmectl"] == ("exec", {"command": "python3 build.py dist/acmectl.pyz",
                                             "files": ["dist/acmectl.pyz"]})
    assert producers["site"] == ("exec", {"command": "python3 build.py pages dist/site", "folder": "dist/site"})
    assert producers["greeting"] == ("python", {"isolation": False})
    registry = api.publishers[0]
    assert registry.settings == {"registry": "registry.acme.test", "namespace": "acme"}
    assert registry.credentials["default"].path == "ACME_REGISTRY_TOKEN"
    deployment, network = plans["api"].resources
    assert deployment["spec"]["image"] == "@artifact(api).image"  # resolved at release time
    assert deployment["spec"]["env"] == [{"name": "API_COMMIT", "value": document.event.commit[:7]}]
    assert network["kind"] == "Network"


def test_feature_branch_releases_nothing(discover, example: Path) -> None:
    document = discover(example, branch="feature-x")
    assert document.diagnostics == ()
    assert [p.release.release for p in document.projects] == [False] * 4
    assert "'feature-x' does not match 'main'" in {p.project.name: p for p in document.projects}["api"].release.reason


def test_push_to_main_releases_projects_with_a_main_trigger(discover, example: Path) -> None:
    document = discover(example, branch="main")
    assert {p.project.name for p in document.projects if p.release.release} == {"api", "docs"}


def test_older_tag_releases_the_library(discover, example: Path) -> None:
    first = git(example, "rev-list", "--max-parents=0", "HEAD").strip()
    document = discover(example, tag="greeting/v0.1.0")
    assert document.event.commit == first
    released = {p.project.name: p.release.version for p in document.projects if p.release.release}
    assert released == {"greeting": "0.1.0"}


def test_document_round_trips_through_json(discover, example: Path) -> None:
    document = discover(example)
    text = json.dumps(document.model_dump(mode="json"))
    assert DiscoveryDocument.model_validate_json(text) == document


def test_run_plan_lists_phases_in_run_order_with_their_tasks(discover, example: Path) -> None:
    from datetime import timedelta

    from forge_core.domain.models import StepSpec

    plan = discover(example).run_plan()
    assert [(p.group_number, p.name, p.required) for p in plan.phases] == [
        (1, "test", True), (1, "validate", False), (2, "build", True), (3, "package", True)
    ]
    test_phase = plan.phases[0]
    assert [t.key for t in test_phase.tasks] == ["acmectl/test", "api/test", "greeting/test"]
    api = test_phase.tasks[1]
    assert (api.project_name, api.project_path, api.timeout) == ("api", "services/api", timedelta(minutes=10))
    assert [s.spec() for s in api.steps] == [StepSpec(
        name="unit", action="exec", target="python3 -m unittest discover -s tests", timeout=timedelta(minutes=2),
    )]
    greeting = test_phase.tasks[2]
    assert greeting.steps[0].timeout is None
    assert greeting.step_limit(greeting.steps[0]) == timedelta(minutes=10)  # no step timeout: the phase's
    artifacts = {(a.project.name, a.spec.name): a for a in plan.artifacts}
    image = artifacts["api", "api"]
    assert (image.spec.type, image.spec.producer) == ("container", "container")
    assert image.spec.producer_settings["platforms"] == ["linux/amd64", "linux/arm64"]
    assert [(p.name, p.type, p.settings["registry"]) for p in image.publishers] == [
        ("container-registry", "docker", "registry.acme.test")
    ]
    assert image.publishers[0].credentials["default"].path == "ACME_REGISTRY_TOKEN"


def test_every_step_of_the_example_passes_with_plain_python(discover, example: Path, host) -> None:
    """The example is the input of `forge run`: its steps must pass on any machine with python3."""
    from forge_core.domain.models import StepStatus
    from forge_core.plugin.family import Family
    from forge_core.ports.protocols import ExecutionContext

    runner = host.registry.create(Family.STEP_RUNNER, "exec")
    for group in discover(example).groups:
        for task in group.tasks:
            for step in task.steps:
                ctx = ExecutionContext(workdir=example / task.project.path, timeout=120)
                outcome = runner.run(step, task.project, ctx)
                assert outcome.status is StepStatus.SUCCESS, (task.id, step.name, outcome.message)


def test_the_api_image_is_built_with_no_daemon_from_the_example(discover, example: Path, host) -> None:
    """Item 7: the api container is produced on a machine with no Earthly, no Docker, no network."""
    from forge_core.plugin.family import Family
    from forge_core.ports.protocols import ExecutionContext

    document = discover(example)
    plan = {p.project.name: p for p in document.projects}["api"]
    artifact, commit = plan.artifacts[0], document.event.commit
    producer = host.registry.create(Family.PRODUCER, artifact.spec.producer)
    produced = producer.produce(artifact.spec, plan.project, commit, ExecutionContext(workdir=example))
    assert produced.reference == f"oci-layout:{example / 'services/api/dist/oci/api'}:api"
    assert produced.metadata["platforms"] == ["linux/amd64", "linux/arm64"]
    assert produced.metadata["files"] == ["/app/app.py"]
    again = producer.produce(artifact.spec, plan.project, commit, ExecutionContext(workdir=example))
    assert again.digest == produced.digest


def test_the_examples_files_archive_and_package_are_produced_with_plain_python(discover, example: Path, host) -> None:
    """No Earthly, no Docker: the exec and python producers build them, reproducibly."""
    from forge_core.plugin.family import Family
    from forge_core.ports.protocols import ExecutionContext

    document = discover(example)
    commit = document.event.commit
    built = {}
    for _ in range(2):  # twice: the same commit builds the same bytes
        for plan in document.projects:
            for artifact in plan.artifacts:
                if artifact.spec.type == "container":
                    continue  # the image's producer is forge_docker's
                producer = host.registry.create(Family.PRODUCER, artifact.spec.producer)
                ctx = ExecutionContext(workdir=example, timeout=300)
                result = producer.produce(artifact.spec, plan.project, commit, ctx)
                assert (result.name, result.project, result.commit) == (artifact.spec.name, plan.project.name, commit)
                built.setdefault(result.name, set()).add((result.digest, tuple(f.name for f in result.files)))
    assert {name: [files for _, files in found] for name, found in built.items()} == {
        "acmectl": [("acmectl.pyz",)],
        "site": [("site.tar.gz",)],
        "greeting": [("acme_greeting-0.1.0-py3-none-any.whl", "acme_greeting-0.1.0.tar.gz")],
    }
    import subprocess
    import tarfile

    tool = example / "tools" / "acmectl" / "dist" / "acmectl.pyz"
    ran = subprocess.run([str(tool), "version"], capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stdout.strip()) == (0, "acmectl 0.3.0")
    with tarfile.open(example / "docs" / "dist" / "site.tar.gz") as site:
        assert site.getnames() == ["site", "site/acmectl.md", "site/api.md", "site/index.md"]
