"""``forge plugin new``: a complete plugin distribution a third party can keep as it is.

The distribution installs alone beside the core: a ``pyproject.toml`` with a build system, an
entry point in ``forge.plugins`` and the core pinned to its minor series; a package whose
implementation really works (a publisher copies files into a folder, a producer packs one…);
a README; and tests, typed for ``mypy --strict``, that subclass the test kit's contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forge_core import __version__
from forge_core.domain.errors import ConfigurationError
from forge_core.plugin.family import Family

NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Template:
    """One family's part of the distribution: the implementation and its contract test."""

    summary: str
    module: str
    factory: str
    implementation: str
    test: str
    options: str = ""
    """Extra keyword arguments of ``register.add(...)``, each on a line of its own."""


def core_range(version: str = __version__) -> str:
    """The core versions a generated plugin accepts: this minor series (0.x), else this major."""
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={major}.{minor},<{upper}"


@dataclass(frozen=True)
class Names:
    """The names one plugin goes by."""

    name: str

    @property
    def distribution(self) -> str:
        return f"{self.name.replace('_', '-')}-forge-plugin"

    @property
    def package(self) -> str:
        return self.distribution.replace("-", "_")

    @property
    def plugin_id(self) -> str:
        return self.name.replace("-", "_")


def write_distribution(name: str, family: str, folder: Path) -> list[Path]:
    """Write the distribution of plugin ``name`` (a ``family`` implementation) into ``folder``.

    Raises ConfigurationError for a bad name or family, or a folder that is not empty.
    """
    if not NAME.match(name) or len(name) > 40:
        raise ConfigurationError(
            f"invalid plugin name {name!r}: use lower-case letters and digits, words joined by '-' or '_'",
            where="NAME",
        )
    template = TEMPLATES.get(family)
    if template is None:
        raise ConfigurationError(f"unknown family {family!r}; choose one of: {', '.join(TEMPLATES)}", where="--family")
    if folder.exists() and any(folder.iterdir()):
        raise ConfigurationError(f"{folder} is not empty; choose a new folder (--output)", where=str(folder))
    names = Names(name)
    declared = Family.named(family.replace("-", "_"))
    values = {
        "name": name,
        "plugin_id": names.plugin_id,
        "distribution": names.distribution,
        "package": names.package,
        "core": core_range(),
        "summary": template.summary,
        "module": template.module,
        "family": family,
        "hook": declared.hook,
        "registrar": declared.registrar.__name__,
        "factory": template.factory,
        "options": template.options,
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{names.package}/__init__.py": INIT,
        f"{names.package}/py.typed": "",
        f"{names.package}/{template.module}.py": template.implementation,
        f"tests/test_{template.module}.py": template.test,
    }
    written = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(text, values))
        written.append(path)
    return written


def _fill(text: str, values: dict[str, str]) -> str:
    """Replace ``{{key}}`` markers (braces of the generated code itself stay as they are)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text).lstrip("\n")


PYPROJECT = '''
[project]
name = "{{distribution}}"
version = "0.1.0"
description = "Catalyst Forge plugin {{name}}: {{summary}}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["catalyst-forge-core{{core}}"]

[project.optional-dependencies]
test = ["catalyst-forge-core[testing]{{core}}", "mypy>=1.11"]

[project.entry-points."forge.plugins"]
{{plugin_id}} = "{{package}}"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{{package}}"]

[tool.pytest.ini_options]
addopts = "-p forge_core.testing --import-mode=importlib -ra"
testpaths = ["tests"]

[tool.mypy]
strict = true
files = ["{{package}}", "tests"]
'''

README = '''
# {{distribution}}

A [Catalyst Forge](https://github.com/input-output-hk/catalyst-forge) plugin: {{summary}}.
It registers the {{family}} `{{name}}` (plugin id `{{plugin_id}}`).

    pip install -e '.[test]'
    pytest          # the test kit's contract for the {{family}} family, and your own tests
    mypy            # strict

`forge plugins` lists it once installed. The hooks are in `{{package}}/__init__.py`; the
implementation, imported on first use, is `{{package}}/{{module}}.py`.
'''

INIT = '''
"""Catalyst Forge plugin {{name}}: {{summary}}.

Only the hooks live here; the implementation is imported when a pipeline first needs it.
"""

from forge_core.sdk import {{registrar}}, hookimpl


@hookimpl
def {{hook}}(register: {{registrar}}) -> None:
    register.add(
        "{{name}}",
        "{{package}}.{{module}}:{{factory}}",{{options}}
        description="{{summary}}",
    )
'''


PUBLISHER = Template(
    summary="publish artifacts by copying their files into a folder",
    module="publisher",
    factory="FolderPublisher",
    options='\n        artifact_types=["archive", "binary"],',
    implementation='''
"""A publisher that copies an artifact's files into the folder its target's settings name."""

import shutil
from pathlib import Path

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
    WorkWithdrawn,
)


class FolderPublisher:
    """``settings: {folder: "/srv/artifacts"}``: files land in ``<folder>/<project>/<artifact>/<commit>/``."""

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        folder = target.settings.get("folder")
        if not isinstance(folder, str) or not folder:
            raise ConfigurationError("settings.folder must name a folder", where=f"publisher {target.name}")
        destination = Path(folder) / artifact.project / artifact.name / artifact.commit
        destination.mkdir(parents=True, exist_ok=True)
        for file in artifact.files:
            if ctx.stop.is_set():  # withdrawn: a partial copy is not a publication
                raise WorkWithdrawn(f"stopped after copying into {destination}", where=f"publisher {target.name}")
            shutil.copy2(file, destination / file.name)
        ctx.log(f"copied {len(artifact.files)} file(s) to {destination}")
        return PublishedLocation(publisher=target.name, type=target.type, uri=destination.as_uri())
''',
    test='''
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import ConfigurationError, ExecutionContext, ProducedArtifact, PublishTarget
from forge_core.testing.contracts import PublisherContract
from {{package}}.publisher import FolderPublisher


class TestFolderPublisher(PublisherContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"folder": str(tmp_path / "published")}

    def verify(self, name: str, result: Any, case: Any) -> None:
        artifact, target, _ = case
        copied = Path(target.settings["folder"]) / artifact.project / artifact.name / artifact.commit
        assert result.uri == copied.as_uri()
        assert sorted(p.read_bytes() for p in copied.iterdir()) == sorted(f.read_bytes() for f in artifact.files)


def test_a_target_without_a_folder_is_a_configuration_error(tmp_path: Path) -> None:
    artifact = ProducedArtifact(name="docs", type="archive", project="site", commit="c" * 40)
    with pytest.raises(ConfigurationError, match="settings.folder"):
        target = PublishTarget(name="shelf", type="{{name}}")
        FolderPublisher().publish(artifact, target, ExecutionContext(workdir=tmp_path))
''',
)

PRODUCER = Template(
    summary="produce archive artifacts by packing a folder of the project",
    module="producer",
    factory="ArchiveProducer",
    options='\n        artifact_types=["archive"],',
    implementation='''
"""A producer that packs a folder of the project into a tar.gz archive."""

import hashlib
import tarfile

from forge_core.sdk import ArtifactSpec, ConfigurationError, ExecutionContext, ProducedArtifact, ProjectRef


class ArchiveProducer:
    """``producer: {{{name}}: {source: "dist"}}``: packs ``<project>/<source>`` (default: the project)."""

    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        source = ctx.workdir / project.path / str(spec.producer_settings.get("source", "."))
        if not source.is_dir():
            raise ConfigurationError(f"{source} is not a folder", where=f"artifact {spec.name} (producer.source)")
        archive = ctx.workdir / f"{spec.name}-{commit[:12]}.tar.gz"
        with tarfile.open(archive, "w:gz") as packed:
            packed.add(source, arcname=spec.name)
        digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
        ctx.log(f"packed {source} into {archive.name} ({digest})")
        return ProducedArtifact(
            name=spec.name, type=spec.type, project=project.name, commit=commit, files=(archive,), digest=digest
        )
''',
    test='''
import tarfile
from pathlib import Path
from typing import Any

from forge_core.testing.contracts import ProducerContract


class TestArchiveProducer(ProducerContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        site = tmp_path / "demo" / "site"
        site.mkdir(parents=True)
        (site / "index.html").write_text("<h1>demo</h1>")
        return {"source": "site"}

    def verify(self, name: str, result: Any, case: Any) -> None:
        (archive,) = result.files
        with tarfile.open(archive) as packed:
            member = packed.extractfile("contract/index.html")
            assert member is not None and member.read() == b"<h1>demo</h1>"
''',
)

STEP_RUNNER = Template(
    summary="run a step's target as a command",
    module="runner",
    factory="CommandRunner",
    implementation='''
"""A step runner that runs the step's ``target`` as a command in the project's folder."""

import os
import shlex
import subprocess
import time

from forge_core.sdk import ExecutionContext, ProjectRef, StepOutcome, StepSpec, StepStatus


class CommandRunner:
    """``{action: "{{name}}", target: "make test"}``; the environment is the step's own plus PATH."""

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        started = time.monotonic()
        env = {"PATH": os.environ.get("PATH", ""), **ctx.env}
        try:
            done = subprocess.run(
                shlex.split(step.target), cwd=ctx.workdir / project.path, env=env,
                capture_output=True, text=True, timeout=ctx.timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            return StepOutcome(status=StepStatus.TIMED_OUT, duration_seconds=time.monotonic() - started)
        except OSError as exc:
            return StepOutcome(status=StepStatus.FAILED, message=str(exc), duration_seconds=time.monotonic() - started)
        for line in (done.stdout + done.stderr).splitlines():
            ctx.log(line)
        status = StepStatus.SUCCESS if done.returncode == 0 else StepStatus.FAILED
        return StepOutcome(status=status, exit_code=done.returncode, duration_seconds=time.monotonic() - started)
''',
    test='''
from pathlib import Path
from typing import Any

from forge_core.sdk import ExecutionContext, ProjectRef, StepSpec, StepStatus
from forge_core.testing.contracts import StepRunnerContract
from {{package}}.runner import CommandRunner


class TestCommandRunner(StepRunnerContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def step(self, name: str, tmp_path: Path) -> StepSpec:
        return StepSpec(name="contract", action=name, target="touch made-by-the-step")

    def verify(self, name: str, result: Any, case: Any) -> None:
        _, _, ctx = case
        assert result.status == StepStatus.SUCCESS and result.exit_code == 0
        assert (ctx.workdir / "made-by-the-step").is_file()


def test_a_failing_command_fails_the_step(tmp_path: Path) -> None:
    step = StepSpec(name="s", action="{{name}}", target="false")
    outcome = CommandRunner().run(step, ProjectRef(name="p", path="."), ExecutionContext(workdir=tmp_path))
    assert (outcome.status, outcome.exit_code) == (StepStatus.FAILED, 1)
''',
)

JOB_HANDLER = Template(
    summary="handle jobs by writing a report of their payload",
    module="handler",
    factory="ReportHandler",
    implementation='''
"""A job handler that writes the job's payload as a JSON report into the worker's cache folder."""

import json

from forge_core.sdk import Job, JobContext, JobResult, JobStatus


class ReportHandler:
    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        report = ctx.cache_dir / "reports" / f"{job.id}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"run": job.run_id, "type": job.type, "payload": job.payload}, sort_keys=True))
        ctx.log(f"wrote {report}")
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output={"report": str(report)})
''',
    test='''
import json
from pathlib import Path
from typing import Any

from forge_core.testing.contracts import JobHandlerContract


class TestReportHandler(JobHandlerContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def payload(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"project": "demo", "attempt": 2}

    def verify(self, name: str, result: Any, case: Any) -> None:
        job, _ = case
        report = json.loads(Path(result.output["report"]).read_text())
        assert report == {"run": job.run_id, "type": name, "payload": {"project": "demo", "attempt": 2}}
''',
)

TRIGGER = Template(
    summary="release when the pushed branch matches a pattern",
    module="trigger",
    factory="BranchPatternTrigger",
    implementation='''
"""A release trigger that fires when the event's branch matches ``settings.pattern`` (glob)."""

from fnmatch import fnmatchcase

from forge_core.sdk import ProjectRef, SourceEvent, TriggerDecision, TriggerSpec


class BranchPatternTrigger:
    """``release: on: [{type: "{{name}}", settings: {pattern: "release/*"}}]``."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        pattern = str(spec.settings.get("pattern", ""))
        if event.branch is None:
            return TriggerDecision(fired=False, reason="the event is not on a branch", trigger=spec.type)
        fired = bool(pattern) and fnmatchcase(event.branch, pattern)
        verb = "matches" if fired else "does not match"
        return TriggerDecision(fired=fired, reason=f"branch {event.branch!r} {verb} {pattern!r}", trigger=spec.type)
''',
    test='''
from forge_core.sdk import ProjectRef, SourceEvent, TriggerSpec
from forge_core.testing.contracts import TriggerContract

SPEC = TriggerSpec(type="{{name}}", settings={"pattern": "release/*"})
PROJECT = ProjectRef(name="api", path="services/api")


def event(branch: str | None) -> SourceEvent:
    return SourceEvent(repository="acme/mono", commit="c" * 40, branch=branch)


class TestBranchPatternTrigger(TriggerContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)
    cases = [
        ("{{name}}", SPEC, event("release/1.2"), PROJECT, True),
        ("{{name}}", SPEC, event("main"), PROJECT, False),
        ("{{name}}", SPEC, event(None), PROJECT, False),
    ]
''',
)

RENDERER = Template(
    summary="render deploy resources as labelled manifests",
    module="renderer",
    factory="LabellingRenderer",
    implementation='''
"""A renderer that labels each deploy resource with its project and commit (JSON is YAML)."""

import copy
import json
from typing import Any

from forge_core.sdk import RenderedResources, RenderRequest


class LabellingRenderer:
    def render(self, request: RenderRequest) -> RenderedResources:
        manifests: list[dict[str, Any]] = []
        for resource in request.resources.get("resources", []):
            manifest = copy.deepcopy(resource)
            labels = manifest.setdefault("metadata", {}).setdefault("labels", {})
            labels["app.kubernetes.io/part-of"] = request.project
            labels["forge.projectcatalyst.io/commit"] = request.commit
            manifests.append(manifest)
        text = "---\\n".join(json.dumps(m, indent=2, sort_keys=True) + "\\n" for m in manifests)
        return RenderedResources(manifests=tuple(manifests), text=text)
''',
    test='''
from typing import Any

from forge_core.testing.contracts import RendererContract


class TestLabellingRenderer(RendererContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def verify(self, name: str, result: Any, case: Any) -> None:
        (request,) = case
        (manifest,) = result.manifests
        assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == request.project
        assert manifest["data"] == {"a": "b"}
''',
)

NOTIFIER = Template(
    summary="record commit statuses as JSON lines in a file",
    module="notifier",
    factory="FileNotifier",
    implementation='''
"""A notifier that appends each commit status as a JSON line to the file its options name."""

from pathlib import Path

from forge_core.sdk import CommitStatus, ConfigurationError, NotifierOptions


class FileNotifier:
    """``FORGE_API__NOTIFIER__OPTIONS='{"path": "/var/log/forge/statuses.jsonl"}'``."""

    def send_commit_status(self, status: CommitStatus, options: NotifierOptions) -> None:
        path = options.options.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigurationError("options.path must name a file", where="notifier {{name}}")
        with Path(path).open("a") as log:
            log.write(status.model_dump_json() + "\\n")
''',
    test='''
import json
from pathlib import Path
from typing import Any

from forge_core.sdk import NotifierOptions
from forge_core.testing.contracts import NotifierContract


class TestFileNotifier(NotifierContract):
    plugin_id = "{{plugin_id}}"
    distribution = "{{distribution}}"
    names = ("{{name}}",)

    def options(self, name: str, tmp_path: Path) -> NotifierOptions:
        return NotifierOptions(options={"path": str(tmp_path / "statuses.jsonl")})

    def verify(self, name: str, result: Any, case: Any) -> None:
        status, options = case
        lines = Path(options.options["path"]).read_text().splitlines()
        assert [json.loads(line)["commit_sha"] for line in lines] == [status.commit_sha]
''',
)


TEMPLATES: dict[str, Template] = {
    "publisher": PUBLISHER,
    "producer": PRODUCER,
    "step-runner": STEP_RUNNER,
    "job-handler": JOB_HANDLER,
    "trigger": TRIGGER,
    "renderer": RENDERER,
    "notifier": NOTIFIER,
}
"""``--family`` (a family's key with '-') → what the generated distribution implements."""
