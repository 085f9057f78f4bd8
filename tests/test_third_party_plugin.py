"""A plugin written only against the public API, built as a real wheel inside the test and
installed beside the core, is discovered, listed and called — the core is not touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

PYPROJECT = """
[project]
name = "acme-forge-tarball"
version = "3.1.4"
dependencies = ["catalyst-forge-core>=0.1,<0.2"]

[project.entry-points."forge.plugins"]
acme_tarball = "acme_forge_tarball"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""

PLUGIN = '''
"""Publishes artifacts by copying their files into a folder (a third party's plugin)."""
import shutil
from pathlib import Path

from forge_core.sdk import PublishedLocation, PublisherRegistrar, hookimpl


class FolderPublisher:
    def publish(self, artifact, target, ctx):
        destination = Path(target.settings["folder"]) / artifact.project / artifact.name
        destination.mkdir(parents=True, exist_ok=True)
        for file in artifact.files:
            shutil.copy(file, destination / Path(file).name)
        ctx.log(f"copied {len(artifact.files)} file(s) to {destination}")
        return PublishedLocation(publisher=target.name, type=target.type, uri=destination.as_uri())


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add("folder", FolderPublisher, artifact_types=["archive"], description="Copy into a folder")
'''

CALL = """
import json, sys
from pathlib import Path
from forge_core.plugin.host import load_plugins
from forge_core.domain.models import ProducedArtifact, PublishTarget
from forge_core.ports.protocols import ExecutionContext
from forge_core.plugin.family import Family
from forge_core.settings import load_settings

work = Path(sys.argv[1])
payload = work / "docs.tar.gz"
payload.write_bytes(b"archive bytes")
host = load_plugins(load_settings().plugins)
publisher = host.create(Family.PUBLISHER, "folder")
lines = []
location = publisher.publish(
    ProducedArtifact(name="docs", type="archive", project="handbook", commit="c" * 40, files=(payload,)),
    PublishTarget(name="shelf", type="folder", settings={"folder": str(work / "shelf")}),
    ExecutionContext(workdir=work, log=lines.append),
)
print(json.dumps({"uri": location.uri, "log": lines}))
"""


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel with hatchling and install it into a folder as an installer would."""
    from hatchling.builders.wheel import WheelBuilder

    source = tmp_path_factory.mktemp("acme-source")
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (source / "acme_forge_tarball").mkdir()
    (source / "acme_forge_tarball" / "__init__.py").write_text(PLUGIN)
    wheels = tmp_path_factory.mktemp("wheels")
    wheel = next(iter(WheelBuilder(str(source)).build(directory=str(wheels), versions=["standard"])))
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run(args: list[str], site: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(settings, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_wheel_declares_its_entry_point(installed_plugin: Path) -> None:
    entry_points = next(installed_plugin.glob("acme_forge_tarball-3.1.4.dist-info")) / "entry_points.txt"
    assert "acme_tarball = acme_forge_tarball" in entry_points.read_text()


def test_third_party_plugin_is_discovered_and_listed(installed_plugin: Path) -> None:
    result = run(["-m", "forge_core.cli.main", "plugins", "--json"], installed_plugin)
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)["plugins"]}
    plugin = rows["acme_tarball"]
    assert (plugin["distribution"], plugin["version"], plugin["status"]) == ("acme-forge-tarball", "3.1.4", "loaded")
    assert plugin["registrations"] == {"publisher": ["folder"]}
    assert plugin["hooks"] == ["forge_register_publishers"]


def test_third_party_publisher_is_called(installed_plugin: Path, tmp_path: Path) -> None:
    result = run(["-c", CALL, str(tmp_path)], installed_plugin)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    published = tmp_path / "shelf" / "handbook" / "docs" / "docs.tar.gz"
    assert published.read_bytes() == b"archive bytes"
    assert outcome["uri"] == published.parent.as_uri()
    assert outcome["log"] == [f"copied 1 file(s) to {published.parent}"]


def test_third_party_plugin_can_be_blocked(installed_plugin: Path) -> None:
    result = run(
        ["-m", "forge_core.cli.main", "plugins", "--json"], installed_plugin, FORGE_PLUGINS__BLOCK="acme_tarball"
    )
    rows = {row["id"]: row for row in json.loads(result.stdout)["plugins"]}
    assert rows["acme_tarball"]["status"] == "disabled"


def test_core_tree_is_untouched_by_the_plugin(installed_plugin: Path) -> None:
    import forge_core

    core = Path(forge_core.__file__).parent
    assert not list(core.rglob("*tarball*"))
    assert "acme_forge_tarball" not in sys.modules


# --- a plugin written against the 0.1 documented API, exactly as docs/hooks.md showed it ----------

V01_PYPROJECT = """
[project]
name = "acme-forge-artifactory"
version = "0.1.0"
dependencies = ["catalyst-forge-core>=0.1,<0.2"]

[project.entry-points."forge.plugins"]
acme_artifactory = "acme_forge_artifactory"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""

V01_INIT = '''
# acme_forge_artifactory/__init__.py: keep it light, implementations load on first use
from pathlib import Path

from forge_core.sdk import PipelineRunInfo, PublisherRegistrar, hookimpl

RUNS_SEEN = Path(__file__).parent / "runs-seen.txt"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add("artifactory", "acme_forge_artifactory.publisher:ArtifactoryPublisher",
                 artifact_types=["binary", "archive"], description="JFrog Artifactory")
    register.add("artifactory-edge", "acme_forge_artifactory.publisher:EdgePublisher")


@hookimpl
def forge_pipeline_run_finished(run: PipelineRunInfo) -> None:
    with RUNS_SEEN.open("a") as seen:
        seen.write(f"{run.id} {run.status}\\n")
'''

V01_PUBLISHER = '''
import shutil
from pathlib import Path

from forge_core.sdk import ExecutionContext, NotImplementedInThisVersion, ProducedArtifact
from forge_core.sdk import PublishedLocation, PublishTarget


class ArtifactoryPublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        folder = Path(target.settings["root"]) / artifact.name
        folder.mkdir(parents=True, exist_ok=True)
        for file in artifact.files:
            shutil.copy(file, folder)
        return PublishedLocation(publisher=target.name, type=target.type, uri=folder.as_uri())


class EdgePublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        raise NotImplementedInThisVersion("publisher", "artifactory-edge", "acme_artifactory", detail="edge nodes")
'''

V01_CALL = """
import json, sys
from pathlib import Path
from forge_core.plugin.host import load_plugins
from forge_core.sdk import ExecutionContext, Family, NotImplementedInThisVersion, PipelineRunInfo, ProducedArtifact
from forge_core.sdk import PublishTarget, RunStatus
from forge_core.settings import load_settings

work = Path(sys.argv[1])
payload = work / "tool.tar.gz"
payload.write_bytes(b"tool")
host = load_plugins(load_settings().plugins)
location = host.create(Family.PUBLISHER, "artifactory").publish(
    ProducedArtifact(name="tool", type="archive", project="cli", commit="d" * 40, files=(payload,)),
    PublishTarget(name="artifacts", type="artifactory", settings={"root": str(work / "repo")}),
    ExecutionContext(workdir=work),
)
try:
    host.create(Family.PUBLISHER, "artifactory-edge").publish(None, None, None)
except NotImplementedInThisVersion as exc:
    edge = [exc.family, exc.name, exc.plugin, str(exc)]
run = PipelineRunInfo(id="r-7", repository="acme/mono", commit="d" * 40, status=RunStatus.SUCCESS)
errors = host.notify("forge_pipeline_run_finished", run=run)
print(json.dumps({"uri": location.uri, "edge": edge, "errors": [str(e) for e in errors]}))
"""


@pytest.fixture(scope="module")
def v01_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hatchling.builders.wheel import WheelBuilder

    source = tmp_path_factory.mktemp("artifactory-source")
    (source / "pyproject.toml").write_text(textwrap.dedent(V01_PYPROJECT))
    package = source / "acme_forge_artifactory"
    package.mkdir()
    (package / "__init__.py").write_text(V01_INIT)
    (package / "publisher.py").write_text(V01_PUBLISHER)
    wheels = tmp_path_factory.mktemp("artifactory-wheels")
    wheel = next(iter(WheelBuilder(str(source)).build(directory=str(wheels), versions=["standard"])))
    site = tmp_path_factory.mktemp("artifactory-site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_a_0_1_plugin_is_listed_with_its_hooks(v01_plugin: Path) -> None:
    result = run(["-W", "always::DeprecationWarning", "-m", "forge_core.cli.main", "plugins", "--json"], v01_plugin)
    assert result.returncode == 0, result.stderr
    assert "is deprecated: " not in result.stderr  # the documented 0.1 API is not deprecated
    row = {r["id"]: r for r in json.loads(result.stdout)["plugins"]}["acme_artifactory"]
    assert (row["status"], row["distribution"], row["version"]) == ("loaded", "acme-forge-artifactory", "0.1.0")
    assert row["registrations"] == {"publisher": ["artifactory", "artifactory-edge"]}
    assert row["hooks"] == ["forge_pipeline_run_finished", "forge_register_publishers"]


def test_a_0_1_plugin_is_called(v01_plugin: Path, tmp_path: Path) -> None:
    result = run(["-c", V01_CALL, str(tmp_path)], v01_plugin)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert (tmp_path / "repo" / "tool" / "tool.tar.gz").read_bytes() == b"tool"
    assert outcome["uri"] == (tmp_path / "repo" / "tool").as_uri()
    assert outcome["edge"][:3] == ["publisher", "artifactory-edge", "acme_artifactory"]
    assert "not implemented in this version: edge nodes" in outcome["edge"][3]
    assert outcome["errors"] == []
    assert (v01_plugin / "acme_forge_artifactory" / "runs-seen.txt").read_text() == "r-7 success\n"
