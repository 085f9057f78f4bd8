#!/usr/bin/env python3
"""Concurrent deployments to one GitOps remote, beside a raw commit-and-push loop, in one run.

The remote is a bare repository served by ``git http-backend`` on a loopback port (the plugin's
test kit). Measured:

- the baseline: one process committing and pushing a file per iteration in a loop (``git fetch``,
  ``git reset --hard``, write, ``git commit``, ``git push``): its per-iteration p50;
- the ``deployment`` handler, ``--deployments`` jobs of different projects started at once from
  threads spread over ``--workers`` handlers (a worker's own jobs take turns; the workers race
  each other through fetch / re-apply / fast-forward push): every job's latency (p50, max), the
  wall time, the wall time per deployment and the attempts.

All must land (checked: every pointer at the tip, on a linear history; a worker's waiting jobs
share a group commit, so there are at most as many commits as deployments). Prints the figures,
the commits and the ratios p50 / baseline p50 and (wall / deployments) / baseline p50.

    uv run python benchmarks/deploy.py [--deployments 20] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def raw_loop(url: str, work: Path, iterations: int) -> list[float]:
    clone = work / "raw"
    subprocess.run(["git", "clone", "--quiet", url, str(clone)], env=GIT_ENV, check=True, capture_output=True)
    times = []
    for n in range(iterations):
        started = time.perf_counter()
        git(clone, "fetch", "--quiet", "origin", "main")
        git(clone, "reset", "--quiet", "--hard", "origin/main")
        (clone / f"raw-{n}.yaml").write_text(f"n: {n}\n")
        git(clone, "add", f"raw-{n}.yaml")
        git(clone, "commit", "--quiet", "-m", f"raw {n}")
        git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        times.append(time.perf_counter() - started)
    return times


def deployments(url: str, work: Path, count: int, workers: int) -> tuple[float, list[float], list[int]]:
    from forge_core.sdk import Job, JobStatus
    from forge_core.testing.platform import job_context
    from forge_gitops.handler import DeploymentHandler
    from forge_gitops.settings import GitOpsSettings

    # The defaults, but for the attempts: --workers racers may need as many rounds.
    settings = GitOpsSettings(url=url, push_attempts=max(10, 2 * workers + 2))
    handlers = [DeploymentHandler(settings) for _ in range(workers)]
    latencies: list[float] = []
    attempts: list[int] = []
    failures: list[str] = []
    barrier = threading.Barrier(count + 1)

    def job(n: int, project: str) -> Job:
        return Job(id=uuid.uuid4().hex, type="deployment", run_id="bench", payload={
            "environment": "dev", "actor": "bench", "deployments": [{
                "repository": "acme/bench", "project": project, "release_commit": f"{n + 1:040x}",
                "release_number": 1, "release_id": str(uuid.uuid4())}]})

    # Each worker has its own cache and has deployed once (its clone exists), as the raw loop's
    # clone is made before its timing starts.
    for index, handler in enumerate(handlers):
        handler.handle(job(10_000 + index, f"warm{index}"), job_context(work / f"cache-{index}"))

    def deploy(n: int) -> None:
        ctx: Any = job_context(work / f"cache-{n % workers}")
        barrier.wait()
        started = time.perf_counter()
        result = handlers[n % workers].handle(job(n, f"svc{n}"), ctx)
        latencies.append(time.perf_counter() - started)
        if result.status is not JobStatus.SUCCESS:
            failures.append(str(result.error))
        else:
            attempts.append(int(result.output["attempts"]))

    threads = [threading.Thread(target=deploy, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} deployments failed: {failures[0]}")
    return wall, latencies, attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)  # the chart's deployment replicas
    parser.add_argument("--raw-iterations", type=int, default=20)
    options = parser.parse_args()

    from forge_gitops.testing import create_bare, serve

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        served = serve(create_bare(work / "remote" / "gitops.git"))
        try:
            remote = served.remote
            raw = raw_loop(remote.url, work, options.raw_iterations)
            before = len(remote.history())
            wall, latencies, attempts = deployments(remote.url, work, options.deployments,
                                                   options.workers)
            commits = len(remote.history()) - before - options.workers  # less the warm-ups
            merges = remote.git("rev-list", "--merges", "main").strip()
            tree = remote.git("ls-tree", "-r", "--name-only", "main").split()
        finally:
            served.stop()
    pointers = [path for path in tree if path.endswith("/release.yaml") and "warm" not in path]
    if len(pointers) != options.deployments or merges or not 1 <= commits <= options.deployments:
        raise SystemExit(f"expected {options.deployments} pointers on a linear history, got {len(pointers)} "
                         f"in {commits} commits{' with merges' if merges else ''}")
    base = statistics.median(raw)
    p50 = statistics.median(latencies)
    print(f"raw commit-and-push loop: {options.raw_iterations} iterations, p50 {base * 1000:.0f} ms")
    print(f"{options.deployments} concurrent deployments on {options.workers} workers: all landed in {commits} "
          f"commits, wall {wall:.2f} s, "
          f"p50 {p50 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
          f"attempts p50 {statistics.median(attempts):.0f} max {max(attempts)} total {sum(attempts)}")
    print(f"p50 / raw p50 = {p50 / base:.2f}; wall per deployment / raw p50 = "
          f"{wall / options.deployments / base:.2f}")


if __name__ == "__main__":
    main()
