#!/usr/bin/env python3
"""`forge run` on a generated repository of 50 projects x 3 phase groups of no-op steps: the
platform's overhead per task, beside the same steps run directly in the same run.

    .venv/bin/python benchmarks/run.py [--projects N] [--parallel P] [--rounds R]

Baseline: every step's command (`true`) started as a process, P at a time, with nothing else.
`forge run`: the embedded defaults (SQLite API in-process, a private nats-server, in-process
workers): run creation, discovery over the bus, the plan recorded, then each task as a ci job
(checkout of the commit, the step, its log, every status through the API). Overhead per task =
(forge run's time for discovery and the phase groups - the baseline) / tasks; fixed cost = the
whole command - that run time (start-up, the API, NATS and the workers starting and stopping,
the summary). Targets (issue 12): overhead <= 15 ms a task at 150 tasks (--projects 50) and,
at 1,500 tasks (--projects 500), within 1.3x of that; fixed cost <= 1.5 s.

Also printed, because a shared machine's queueing hides the work: the CPU time forge run used
(its process and children) per task beside the baseline's, and where a task's time goes from the
run's record (in the task: its steps, and the rest; outside it: dispatch, checkout, queueing).
Medians of ``--rounds`` rounds (each its own repository and state directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
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


READ_RUN = """
import asyncio
from forge_core.cli.common import settings_and_plugins
from forge_core.cli.platform import platform_client

async def main():
    settings, host = settings_and_plugins()
    async with platform_client(settings, host) as client:
        run = (await client.list_runs(limit=1)).runs[0]
        print((await client.get_run(str(run.id))).model_dump_json())

asyncio.run(main())
"""
"""Prints the state directory's newest run, whole (forge runs --json lists summaries only)."""


@dataclass(frozen=True)
class Round:
    base: float
    base_cpu: float
    wall: float
    run: float
    cpu: float
    in_tasks: float  # summed task time (recorded start to end)
    in_steps: float  # summed step time


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_round(projects: int, parallel: int) -> Round:
    tasks = projects * len(PHASES)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        repo = generate(root, projects)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
        env.update(FORGE_STATE_DIR=str(root / "state"), FORGE_WORKER__CACHE_DIR=str(root / "cache"))

        before = children_cpu()
        base = asyncio.run(baseline(tasks, parallel))
        base_cpu = children_cpu() - before
        before = children_cpu()
        started = time.perf_counter()
        done = subprocess.run([FORGE, "run", str(repo), "--parallel", str(parallel)],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        cpu = children_cpu() - before
        if done.returncode != 0:
            raise SystemExit(f"forge run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        run = json.loads(subprocess.run([sys.executable, "-c", READ_RUN], env=env, capture_output=True, text=True,
                                        check=True).stdout)
    every = [t for phase in run["phases"] for t in phase["tasks"]]
    return Round(
        base=base, base_cpu=base_cpu, wall=wall, run=seconds(run["started_at"], run["completed_at"]), cpu=cpu,
        in_tasks=sum(seconds(t["started_at"], t["completed_at"]) for t in every),
        in_steps=sum(seconds(s["started_at"], s["completed_at"]) for t in every for s in t["steps"]),
    )


def seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    tasks = options.projects * len(PHASES)
    rounds = [one_round(options.projects, options.parallel) for _ in range(options.rounds)]

    def median(field: str) -> float:
        return statistics.median(getattr(r, field) for r in rounds)

    base, run, wall, cpu, base_cpu = median("base"), median("run"), median("wall"), median("cpu"), median("base_cpu")
    in_tasks, in_steps = median("in_tasks"), median("in_steps")
    per_task = (run - base) / tasks * 1000
    fixed = wall - run
    print(f"{options.projects} projects x {len(PHASES)} phase groups = {tasks} tasks, {options.parallel} at a time "
          f"(median of {len(rounds)})")
    print(f"baseline: the {tasks} steps run directly        {base:8.2f} s   ({base / tasks * 1000:6.1f} ms/task)")
    print(f"forge run, whole command (incl. start-up)    {wall:8.2f} s")
    print(f"forge run, discovery + groups (API times)    {run:8.2f} s   ({run / tasks * 1000:6.1f} ms/task)")
    print(f"platform overhead per task                   {per_task:8.1f} ms   ({run / base:.1f}x the baseline; "
          f"target <= 15 ms at 150 tasks)")
    print(f"fixed cost (whole command - the run)         {fixed:8.2f} s   (target <= 1.5 s)")
    print(f"CPU time: forge run {cpu:.2f} s ({cpu / tasks * 1000:.1f} ms/task), "
          f"the steps directly {base_cpu:.2f} s ({base_cpu / tasks * 1000:.1f} ms/task)")
    besides, outside = (in_tasks - in_steps) / tasks * 1000, (run * options.parallel - in_tasks) / tasks * 1000
    print(f"where a task's time goes (summed over tasks, {options.parallel} run at once): in its steps "
          f"{in_steps / tasks * 1000:.1f} ms, in the task besides its steps {besides:.1f} ms (logs, status "
          f"reports), outside the task {outside:.1f} ms (dispatch, checkout, queueing, discovery)")


if __name__ == "__main__":
    main()
