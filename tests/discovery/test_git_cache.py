"""The git cache: bare mirrors, fetch reuse, locks, corrupt mirrors rebuilt, and the checkouts of
jobs made from the same mirrors under the same rules."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from forge_core.adapters.git import GitCache, GitError, checked_out
from forge_core.settings.git import GitSettings

from .conftest import REPO_CUE, git, write_commit


@pytest.fixture
def origin(make_repo) -> Path:
    return make_repo({".forge/repo.cue": REPO_CUE, "README.md": "hello\n"}, name="origin")


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(GitSettings(cache_dir=tmp_path / "git-cache", lock_timeout=30))


def test_first_use_clones_a_bare_mirror(cache: GitCache, origin: Path) -> None:
    reader, commit = cache.open(str(origin), "main")
    assert commit == git(origin, "rev-parse", "HEAD").strip()
    assert reader.repo.bare
    assert cache.path(str(origin)).is_dir()
    assert {e.path for e in reader.entries(commit)} >= {".forge/repo.cue", "README.md"}


def test_known_commits_need_no_fetch_and_new_ones_are_fetched(cache: GitCache, origin: Path) -> None:
    _, first = cache.open(str(origin), "main")
    mirror = cache.path(str(origin))
    before = (mirror / "FETCH_HEAD").exists()
    cache.open(str(origin), first)
    assert (mirror / "FETCH_HEAD").exists() == before  # no fetch for a commit already there
    second = write_commit(origin, {"README.md": "changed\n"}, "change")
    reader, commit = cache.open(str(origin), second)
    assert commit == second
    assert (mirror / "FETCH_HEAD").exists()
    assert reader.read_blobs([next(e.oid for e in reader.entries(commit) if e.path == "README.md")]) == {
        next(e.oid for e in reader.entries(commit) if e.path == "README.md"): "changed\n"
    }


def test_a_corrupt_mirror_is_rebuilt(cache: GitCache, origin: Path) -> None:
    cache.open(str(origin), "main")
    mirror = cache.path(str(origin))
    (mirror / "HEAD").write_text("garbage\n")
    (mirror / "config").write_text("[[[ not a config\n")
    reader, commit = cache.open(str(origin), "main")
    assert commit == git(origin, "rev-parse", "HEAD").strip()
    assert reader.entries(commit)


def test_concurrent_users_share_one_mirror(cache: GitCache, origin: Path) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            results.append(GitCache(GitSettings(cache_dir=cache.root)).open(str(origin), "main")[1])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1
    assert len(results) == 4
    assert [p.name for p in cache.root.iterdir() if p.suffix == ".git"] == [cache.path(str(origin)).name]


def test_unknown_commit_and_unreachable_repository(cache: GitCache, origin: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError) as raised:
        cache.open(str(origin), "feedfacefeedfacefeedfacefeedfacefeedface")
    assert raised.value.where == "feedfacefeedfacefeedfacefeedfacefeedface"
    with pytest.raises(GitError, match="cannot clone"):
        cache.open(str(tmp_path / "nowhere"), "main")


def test_a_checkout_is_the_commits_tree_from_the_shared_mirror_and_is_removed_after(
    cache: GitCache, origin: Path, tmp_path: Path
) -> None:
    first = git(origin, "rev-parse", "HEAD").strip()
    write_commit(origin, {"README.md": "second\n", "new.txt": "new\n"}, "second")
    dest = tmp_path / "work" / "job-1"
    with checked_out(cache, str(origin), first, dest) as root:
        assert root == dest
        assert (root / "README.md").read_text() == "hello\n"
        assert not (root / "new.txt").exists()
        assert git(root, "rev-parse", "HEAD").strip() == first
    assert not dest.exists()
    assert git(cache.path(str(origin)), "worktree", "list", "--porcelain").count("worktree ") == 1  # the mirror only
    assert cache.open(str(origin), first)[1] == first  # discovery reads the mirror the checkout made


def test_a_checkout_fetches_a_commit_the_mirror_does_not_have_yet(
    cache: GitCache, origin: Path, tmp_path: Path
) -> None:
    cache.open(str(origin), "main")
    later = write_commit(origin, {"README.md": "later\n"}, "later")
    with checked_out(cache, str(origin), later, tmp_path / "work") as root:
        assert (root / "README.md").read_text() == "later\n"


def test_a_corrupt_mirror_is_rebuilt_for_a_checkout(cache: GitCache, origin: Path, tmp_path: Path) -> None:
    commit = cache.open(str(origin), "main")[1]
    mirror = cache.path(str(origin))
    (mirror / "config").write_text("[[[ not a config\n")  # HEAD is still there: not enough to trust it
    with checked_out(cache, str(origin), commit, tmp_path / "work") as root:
        assert (root / "README.md").read_text() == "hello\n"


def check_out(cache: GitCache, url: str, commit: str, dest: Path) -> None:
    """A checkout expected to fail before its block runs."""
    with checked_out(cache, url, commit, dest):
        pytest.fail(f"checked out {commit} of {url}")


def test_a_checkout_waits_for_the_mirror_lock_only_so_long(origin: Path, tmp_path: Path) -> None:
    cache = GitCache(GitSettings(cache_dir=tmp_path / "git-cache", lock_timeout=0.2))
    cache.open(str(origin), "main")
    with FileLock(cache.path(str(origin)).with_suffix(".lock")), pytest.raises(GitError, match="locked by another"):
        check_out(cache, str(origin), "main", tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_a_checkout_of_a_missing_commit_names_it_and_leaves_nothing(
    cache: GitCache, origin: Path, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="is not in") as raised:
        check_out(cache, str(origin), "0" * 40, tmp_path / "work")
    assert raised.value.where == "0" * 40
    assert not (tmp_path / "work").exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("use", ["open", "checkout"])
def test_credentials_in_a_repository_url_never_reach_an_error(cache: GitCache, tmp_path: Path, use: str) -> None:
    url = f"http://forge-bot:s3cr3t-t0ken@127.0.0.1:{_closed_port()}/acme/monorepo.git"
    attempt = (lambda: cache.open(url, "main")) if use == "open" else (
        lambda: check_out(cache, url, "0" * 40, tmp_path / "work")
    )
    with pytest.raises(GitError) as raised:
        attempt()
    shown = f"{raised.value} {raised.value.where} {raised.value.details}"
    assert "s3cr3t-t0ken" not in shown and "forge-bot" not in shown
    assert "****@127.0.0.1" in shown


def test_no_repository_is_an_error_naming_the_field(cache: GitCache, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="no repository given") as raised:
        check_out(cache, "", "0" * 40, tmp_path / "work")
    assert raised.value.where == "repository"
