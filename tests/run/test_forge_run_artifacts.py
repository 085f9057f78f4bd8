"""`forge run`'s artifact stage on a small monorepo whose artifact is built by a third party's
producer and published by the real docker publisher and a third party's publisher — the plugin
(:mod:`acme_forge_artifacts`, written against ``forge_core.sdk`` only) built into a wheel here
and installed beside the core, named in ``repo.cue``, with no core change."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from forge_core.testing.registry import RegistryServer, free_port

Forge = Callable[..., subprocess.CompletedProcess[str]]
PLUGIN_SOURCE = Path(__file__).parent / "acme_forge_artifacts"
PYPROJECT = """
[project]
name = "acme-forge-artifacts"
version = "1.0.0"
dependencies = ["catalyst-forge-core>=0.1,<0.2"]

[project.entry-points."forge.plugins"]
acme_artifacts = "acme_forge_artifacts"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""

REPO_CUE = """
package repo

forgeVersion: "v1.0.0"
tagging: strategy: "monorepo"
phases: build: {group: 1, timeout: "5m"}
publishers: {
	registry: {type: "docker", registry: "%(registry)s", namespace: "acme"}
	shelf: {type: "shelf", folder: "%(shelf)s"}
}
"""

PROJECT_CUE = """
package project

phases: build: steps: [{name: "check", action: "exec", target: "test -f README"}]
artifacts: image: {
	type: "container"
	producer: "acme-layout": files: {"app/hello": "hello from svc"}
	publishers: ["registry", "shelf"]
}
release: on: [{branch: "main"}]
"""


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third party's plugin built with hatchling and unpacked as an installer would."""
    from hatchling.builders.wheel import WheelBuilder

    source = tmp_path_factory.mktemp("acme-source")
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    package = source / "acme_forge_artifacts"
    package.mkdir()
    (package / "__init__.py").write_text((PLUGIN_SOURCE / "__init__.py").read_text())
    wheels = tmp_path_factory.mktemp("wheels")
    wheel = next(iter(WheelBuilder(str(source)).build(directory=str(wheels), versions=["standard"])))
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def monorepo(folder: Path, registry: str, shelf: Path) -> tuple[Path, str]:
    (folder / ".forge").mkdir(parents=True)
    (folder / "svc" / ".forge").mkdir(parents=True)
    (folder / ".forge" / "repo.cue").write_text(REPO_CUE % {"registry": registry, "shelf": shelf})
    (folder / "svc" / ".forge" / "project.cue").write_text(PROJECT_CUE)
    (folder / "svc" / "README").write_text("svc\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=env)
    commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    return folder, commit


def shelf_calls(shelf: Path) -> list[dict[str, object]]:
    calls = shelf / "calls.jsonl"
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def test_without_publish_every_publisher_plans_and_no_host_is_contacted(
    forge: Forge, acme_site: Path, tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens: a contact would fail the run
    repo, commit = monorepo(tmp_path / "mono", closed, tmp_path / "shelf")
    result = forge("run", str(repo), env={"PYTHONPATH": str(acme_site)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "svc: release" in out
    assert "artifacts (planned (no publisher contacted; --publish publishes)):" in out
    assert "success  svc/image (container)  sha256:" in out
    assert f"→ registry (docker): planned  {closed}/acme/image:sha-{commit}@sha256:" in out
    assert "→ shelf (shelf): not_planned  cannot plan; use --publish" in out
    assert shelf_calls(tmp_path / "shelf") == []
    assert "svc: not released — it declares no deploy resources" in out  # a release is rendered resources


def test_publish_pushes_to_the_registry_and_calls_the_third_party_publisher(
    forge: Forge, acme_site: Path, oci_registry: RegistryServer, tmp_path: Path
) -> None:
    shelf = tmp_path / "shelf"
    repo, commit = monorepo(tmp_path / "mono", oci_registry.address, shelf)
    result = forge("run", str(repo), "--publish", env={"PYTHONPATH": str(acme_site)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "artifacts (published):" in result.stdout
    head = httpx.head(f"http://{oci_registry.address}/v2/acme/image/manifests/sha-{commit}",
                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert head.status_code == 200
    digest = head.headers["Docker-Content-Digest"]
    assert f"→ registry (docker): published  {oci_registry.address}/acme/image:sha-{commit}@{digest}" in result.stdout
    (call,) = shelf_calls(shelf)
    assert (call["name"], call["project"], call["commit"], call["digest"]) == ("image", "svc", commit, digest)
    assert f"→ shelf (shelf): published  {shelf.as_uri()}/image" in result.stdout


def test_a_failed_target_fails_the_run_naming_the_artifact_and_the_target(
    forge: Forge, acme_site: Path, tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    shelf = tmp_path / "shelf"
    repo, _ = monorepo(tmp_path / "mono", closed, shelf)
    result = forge("run", str(repo), "--publish", env={"PYTHONPATH": str(acme_site), "FORGE_OCI__ATTEMPTS": "1"},
                   timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "artifact svc/image failed: target 'registry' (docker)" in result.stdout
    assert closed in result.stdout
    assert len(shelf_calls(shelf)) == 1  # the other target still ran
