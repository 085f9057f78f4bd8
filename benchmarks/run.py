#!/usr/bin/env python3
"""`forge run` on a generated repository of 50 projects x 3 phase groups of no-op steps: the
platform's overhead per task, beside the same steps run directly in the same run.

    .venv/bin/python benchmarks/run.py [--projects N] [--parallel P]

Baseline: every step's command (`true`) started as a process, P at a time, with nothing else.
`forge run`: the embedded defaults (SQLite API in-process, a private nats-server, in-process
workers): run creation, discovery over the bus, the plan recorded, then each task as a ci job
(checkout of the commit, the step, its log, every status through the API). Overhead per task =
(forge run's time for the phase groups - the baseline) / tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORGE = str(Path(sys.executable).parent / "forge")
PHASES = ("test", "build", "package")
REPO_CUE = """package repo

forgeVersion: "v1.0.0"
tagging: strategy: "monorepo"
phases: {
	test: {group: 1, timeout: "5m"}
	build: {group: 2, timeout: "5m"}
	package: {group: 3, timeout: "5m"}
}
"""
PROJECT_CUE = """package project

phases: {
	test: steps: [{name: "noop", action: "exec", target: "true"}]
	build: steps: [{name: "noop", action: "exec", target: "true"}]
	package: steps: [{name: "noop", action: "exec", target: "true"}]
}
"""


def generate(root: Path, projects: int) -> Path:
    repo = root / "mono"
    (repo / ".forge").mkdir(parents=True)
    (repo / ".forge" / "repo.cue").write_text(REPO_CUE)
    for index in range(projects):
        folder = repo / "projects" / f"p{index:03d}"
        (folder / ".forge").mkdir(parents=True)
        (folder / ".forge" / "project.cue").write_text(PROJECT_CUE)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "generated"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


async def baseline(tasks: int, parallel: int) -> float:
    """The steps alone: `true` as a shell command, `parallel` at a time, group after group."""
    slots = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with slots:
            process = await asyncio.create_subprocess_shell("true")
            await process.wait()

    started = time.perf_counter()
    for _ in PHASES:
        await asyncio.gather(*(one() for _ in range(tasks // len(PHASES))))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=4)
    options = parser.parse_args()
    tasks = options.projects * len(PHASES)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        repo = generate(root, options.projects)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
        env.update(FORGE_STATE_DIR=str(root / "state"), FORGE_WORKER__CACHE_DIR=str(root / "cache"))

        base = asyncio.run(baseline(tasks, options.parallel))
        started = time.perf_counter()
        done = subprocess.run([FORGE, "run", str(repo), "--parallel", str(options.parallel)],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"forge run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        runs = json.loads(subprocess.run([FORGE, "runs", "--json"], env=env, capture_output=True, text=True,
                                         check=True).stdout)["runs"]
    run = runs[0]
    from datetime import datetime

    phases = (datetime.fromisoformat(run["completed_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    print(f"{options.projects} projects x {len(PHASES)} phase groups = {tasks} tasks, {options.parallel} at a time")
    print(f"baseline: the {tasks} steps run directly        {base:8.2f} s   ({base / tasks * 1000:6.1f} ms/task)")
    print(f"forge run, whole command (incl. start-up)    {wall:8.2f} s")
    print(f"forge run, discovery + groups (API times)    {phases:8.2f} s   ({phases / tasks * 1000:6.1f} ms/task)")
    print(f"platform overhead per task                   {(phases - base) / tasks * 1000:8.1f} ms   "
          f"({phases / base:.1f}x the baseline)")


if __name__ == "__main__":
    main()
