#!/usr/bin/env python3
"""Discovery of a generated monorepo of 1,000 projects, beside the cost of CUE itself.

    uv run python benchmarks/discovery.py [--projects N] [--rounds R]

Prints, in one run: the baseline (one single-batch CUE evaluation of all the configuration
files), cold discovery (empty cache: git, evaluation in batches of FORGE_CUE__BATCH_PROJECTS,
validation, plan) of the N projects and of N/2, warm rediscovery of the same commit, and
rediscovery after one project changed; with ratios. Targets (issue 12): cold discovery of N
within 2.2x of N/2 (linear), at most 0.6x the single-batch evaluation; warm rediscovery of
1,000 under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from forge_core.adapters.cue import open_evaluator, shared_evaluator
from forge_core.adapters.git import CommitReader
from forge_core.builtin.discovery import new_discovery
from forge_core.domain.models import EventKind, SourceEvent
from forge_core.plugin.host import load_plugins
from forge_core.services.discovery import Discovery, installed_names, runtime_values
from forge_core.services.evaluation import Source, build_batch, split_header
from forge_core.settings import PluginSettings
from forge_core.settings.cue import CueSettings

REPO_CUE = """package repo

forgeVersion: "v1.0.0"
tagging: strategy: "monorepo"
phases: {
	validate: {group: 1, timeout: "5m"}
	test: {group: 1, required: true}
	build: {group: 2, timeout: "20m"}
	package: {group: 3}
}
publishers: {
	registry: {type: "docker", registry: "registry.bench", credentials: {provider: "env", secretName: "T"}}
	bucket: {type: "s3", bucket: "bench"}
}
"""

PROJECT_CUE = """package project

phases: {{
	validate: steps: [{{name: "lint", action: "earthly", target: "+lint"}}]
	test: steps: [
		{{name: "unit", action: "earthly", target: "+test", timeout: "10m"}},
		{{name: "integration", action: "earthly", target: "+integration"}},
	]
	build: steps: [{{name: "compile", action: "earthly", target: "+build"}}]
	package: steps: [{{name: "image", action: "earthly", target: "+docker"}}]
}}
artifacts: {{
	"svc-{n}": {{
		type: "container"
		producer: earthly: {{target: "+docker", imageRef: "svc-{n}:latest"}}
		publishers: ["registry"]
	}}
	"docs-{n}": {{
		type: "archive"
		producer: earthly: target: "+docs"
		publishers: ["bucket"]
	}}
}}
release: on: [{{branch: "main"}}, {{tag: true}}]
deploy: resources: [{{
	apiVersion: "forge.projectcatalyst.io/v1alpha1"
	kind:       "Deployment"
	metadata: name: "svc-{n}"
	spec: {{image: #artifact["svc-{n}"].image, replicas: 2, port: 8080}}
}}]
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def generate(repo: Path, count: int) -> None:
    (repo / ".forge").mkdir(parents=True)
    (repo / ".forge" / "repo.cue").write_text(REPO_CUE)
    for n in range(count):
        folder = repo / "services" / f"svc-{n:04}"
        (folder / ".forge").mkdir(parents=True)
        (folder / ".forge" / "project.cue").write_text(PROJECT_CUE.format(n=n))
        (folder / "main.py").write_text(f"print('service {n}')\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "generated monorepo")


def timed(action):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="baseline and cold runs alternate; best of each")
    args = parser.parse_args()
    registry = load_plugins(PluginSettings()).registry
    cue = CueSettings()
    evaluator = open_evaluator(cue)  # the baseline's: one evaluation
    pool = shared_evaluator(cue)  # discovery's, as a worker has it (FORGE_CUE__PARALLEL evaluations at once)
    half_count = args.projects // 2
    with tempfile.TemporaryDirectory(prefix="forge-bench-") as tmp:
        repo, half_repo = Path(tmp) / "mono", Path(tmp) / "half"
        generate(repo, args.projects)
        generate(half_repo, half_count)
        reader, half_reader = CommitReader(repo), CommitReader(half_repo)
        event = SourceEvent(repository="mono", commit=reader.resolve("HEAD"), branch="main", kind=EventKind.PUSH)
        half_event = event.model_copy(update={"commit": half_reader.resolve("HEAD")})
        evaluator.export({"warm.cue": "package x\na: 1\n"})  # the evaluators' start is paid by neither
        warmers = [threading.Thread(target=pool.export, args=({"warm.cue": "package x\na: 1\n"},))
                   for _ in range(cue.parallel)]  # at once: the pool opens each of its evaluators
        for warmer in warmers:
            warmer.start()
        for warmer in warmers:
            warmer.join()

        # Baseline: the files, read and ready, in one CUE evaluation.
        sources = [Source(f"p{i}", f"services/svc-{i:04}/.forge/project.cue", PROJECT_CUE.format(n=i))
                   for i in range(args.projects)]
        repo_source = Source("repo", ".forge/repo.cue", REPO_CUE)
        headers = {s.file: split_header(s.text, s.file) for s in (repo_source, *sources)}
        batch = build_batch(repo_source, sources, headers, installed_names(registry), runtime_values(event))

        def cold(source: CommitReader, at: SourceEvent, count: int, cache: str) -> tuple[float, Discovery]:
            discovery = new_discovery(registry, pool, Path(tmp) / cache, cue)
            took, document = timed(lambda: discovery.discover(source, at))
            assert document.ok, document.diagnostics[:3]
            assert len(document.projects) == count
            return took, discovery

        baselines, colds, halves = [], [], []
        for round_ in range(args.rounds):  # alternating, so drift in the machine hits all alike
            took, result = timed(lambda: evaluator.export(batch.files))
            assert result.ok, result.errors[:3]
            baselines.append(took)
            took, discovery = cold(reader, event, args.projects, f"cache-{round_}")
            colds.append(took)
            halves.append(cold(half_reader, half_event, half_count, f"half-{round_}")[0])
        baseline, cold_time, half = min(baselines), min(colds), min(halves)
        warm, again = timed(lambda: discovery.discover(reader, event))
        assert again.evaluated == 0

        changed = repo / "services" / "svc-0007" / ".forge" / "project.cue"
        changed.write_text(changed.read_text().replace("replicas: 2", "replicas: 3"))
        git(repo, "commit", "--quiet", "-am", "svc-0007: three replicas")
        event = event.model_copy(update={"commit": reader.resolve("HEAD")})
        one, after = timed(lambda: discovery.discover(reader, event))
        assert after.evaluated == 1
        assert after.ok
    evaluator.close()
    pool.close()

    n = args.projects
    print(f"discovery of {n} projects ({evaluator.version}; batches of {cue.batch_projects}, {cue.parallel} at once; "
          f"best of {args.rounds} for the first three)")
    print(f"  baseline: one single-batch CUE evaluation  {baseline:8.3f} s")
    print(f"  cold discovery of {n:<5}                  {cold_time:8.3f} s   {cold_time / baseline:5.2f}x baseline "
          "(target <= 0.6x)")
    print(f"  cold discovery of {half_count:<5}                  {half:8.3f} s   {cold_time / half:5.2f}x: "
          f"{n} projects cost that of {half_count} (target <= 2.2x)")
    print(f"  warm rediscovery, same commit              {warm:8.3f} s   (target < 0.5 s at 1,000)")
    print(f"  rediscovery, one project changed           {one:8.3f} s")


if __name__ == "__main__":
    main()
