"""The git cache: bare mirrors, fetch reuse, locks, corrupt mirrors rebuilt."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from forge_core.adapters.git import GitCache, GitError
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
