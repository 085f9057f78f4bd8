"""Checkouts from the worker's materialised commit: one extraction per commit, a copy per
delivery that a step may change freely, no mirror lock once the commit is there."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from filelock import FileLock

from forge_core.adapters.git import GitCache, checked_out
from forge_core.settings.git import GitSettings


def test_a_step_changing_its_checkout_in_place_leaves_the_next_checkout_intact(
    monorepo: tuple[Path, str], tmp_path: Path
) -> None:
    repo, commit = monorepo
    cache = GitCache(GitSettings(cache_dir=tmp_path / "cache" / "git", lock_timeout=5))
    with checked_out(cache, str(repo), commit, tmp_path / "work" / "a") as root:
        hello = root / "api" / "hello.txt"
        with open(hello, "r+") as handle:  # in place, as `>>` or an editor's save would
            handle.write("CHANGED")
        (root / "api" / "new.txt").write_text("left behind\n")
    with checked_out(cache, str(repo), commit, tmp_path / "work" / "b") as root:
        assert (root / "api" / "hello.txt").read_text() == "hello from api\n"
        assert not (root / "api" / "new.txt").exists()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        assert head.stdout.strip() == commit  # git in a step sees the commit
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                                check=True)
        assert status.stdout == ""  # and a clean tree
    from forge_core.adapters.git.checkout import trees_folder

    assert [p.name for p in trees_folder(cache).iterdir() if p.is_dir()] == [commit]  # extracted once


def test_checkouts_of_a_materialised_commit_take_no_mirror_lock(monorepo: tuple[Path, str], tmp_path: Path) -> None:
    """What made four task threads wait on each other half of the time: every checkout added and
    removed a worktree under the mirror's exclusive lock."""
    repo, commit = monorepo
    cache = GitCache(GitSettings(cache_dir=tmp_path / "cache" / "git", lock_timeout=0.5))
    with checked_out(cache, str(repo), commit, tmp_path / "work" / "first"):
        pass
    lock = FileLock(cache.path(str(repo)).with_suffix(".lock"))
    holder_ready, release = threading.Event(), threading.Event()

    def hold() -> None:  # another process's long fetch, say
        with lock:
            holder_ready.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holder_ready.wait(5)
    try:
        for n in range(3):
            with checked_out(cache, str(repo), commit, tmp_path / "work" / f"job-{n}") as root:
                assert (root / "web" / "index.html").read_text() == "<p>web</p>\n"
    finally:
        release.set()
        holder.join()
