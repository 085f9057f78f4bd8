#!/usr/bin/env python3
"""A ci job's checkout: the worker's materialised commit copied per delivery, beside the
`git worktree add/remove` under the mirror's lock it replaced, in the same run.

    .venv/bin/python benchmarks/checkout.py [--projects N] [--tasks T] [--parallel P] [--repeats R]

The repository is benchmarks/run.py's (N projects of three files each, plus `--files` extra files
per project to try bigger trees). Both ways check out the same commit T times, P at a time
(threads, as a worker's task slots), the mirror already cloned; the figure is the wall time per
checkout (median of R repeats) and the ratio new / old.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from run import generate

from forge_core.adapters.git import GitCache, checked_out
from forge_core.adapters.git.reader import run_git
from forge_core.settings.git import GitSettings


@contextmanager
def worktree(cache: GitCache, url: str, commit: str, dest: Path) -> Iterator[Path]:
    """The old way, as it was: a detached worktree added and removed under the mirror's lock."""
    with cache.holding(url, commit) as (reader, resolved):
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        run_git(reader.git_dir, "worktree", "add", "--detach", "--force", str(dest), resolved)
    try:
        yield dest
    finally:
        with cache.locked(url) as mirror:
            run_git(mirror, "worktree", "remove", "--force", str(dest))


def timed(way: Callable[..., object], cache: GitCache, url: str, commit: str, work: Path,
          tasks: int, parallel: int) -> float:
    def one(index: int) -> None:
        with way(cache, url, commit, work / f"job-{index}") as root:  # type: ignore[operator]
            assert (Path(root) / ".forge" / "repo.cue").exists()

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, range(tasks)))
    return (time.perf_counter() - started) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--files", type=int, default=0, help="extra files per project")
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forge-bench-checkout-") as temp:
        root = Path(temp)
        repo = generate(root, args.projects)
        if args.files:
            for project in (repo / "projects").iterdir():
                for n in range(args.files):
                    (project / f"f{n}.txt").write_text(f"{project.name} {n}\n" * 20)
            subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
            subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@example.invalid",
                            "commit", "-qm", "files"], check=True)
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        cache = GitCache(GitSettings(cache_dir=root / "cache" / "git", lock_timeout=60))
        cache.open(str(repo), commit)  # the mirror exists in both cases
        old: list[float] = []
        new: list[float] = []
        for repeat in range(args.repeats):
            old.append(timed(worktree, cache, str(repo), commit, root / f"old-{repeat}", args.tasks, args.parallel))
            new.append(timed(checked_out, cache, str(repo), commit, root / f"new-{repeat}", args.tasks, args.parallel))
        files = sum(1 for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
        o, n = statistics.median(old), statistics.median(new)
        print(f"checkout of a {files}-file commit, {args.tasks} tasks, {args.parallel} at a time, "
              f"median of {args.repeats}")
        print(f"  worktree add/remove under the mirror lock (old): {o * 1000:7.2f} ms a task")
        print(f"  materialised commit, copied per delivery (new):  {n * 1000:7.2f} ms a task")
        print(f"  new / old: {n / o:.2f}")


if __name__ == "__main__":
    main()
