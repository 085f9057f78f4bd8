"""A commit's files on disk for a job: a copy of the commit, materialised once per worker cache.

The one function jobs check out through. The first job of a commit extracts its tree from the
mirror (``read-tree`` + ``checkout-index`` with an index of its own, under the mirror's lock) into
``<trees>/<commit>``; that folder is never changed after. Every delivery then gets its own copy
of it (``cp -a --reflink=auto``: copy-on-write where the filesystem can, else a real copy, so
whatever a step writes or modifies in place stays in its copy), moved out of the way at the end
of the block and deleted in the background (a large tree's removal costs the job nothing).
No mirror lock and no git command is taken for a commit already materialised.

A checkout's ``.git`` is a small repository of its own (HEAD at the commit, the mirror's objects
as an alternate), so git commands in a step see the commit as in a clone. The cache keeps the :data:`KEEP_TREES`
most recently used commits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forge_core.adapters.git.cache import FULL_SHA, GitCache
from forge_core.adapters.git.reader import GitError
from forge_core.domain.secrets import redact_url, redact_urls

KEEP_TREES = 8
"""Materialised commits kept per worker cache (the least recently used beyond go)."""


def trees_folder(cache: GitCache) -> Path:
    """Where ``cache``'s materialised commits live (beside its mirrors)."""
    return cache.root.parent / "trees"


@contextmanager
def checked_out(cache: GitCache, url: str, commit: str, dest: Path) -> Iterator[Path]:
    """The tree of ``commit`` of ``url`` at ``dest`` (a folder of its own) for the duration of the block."""
    trees = trees_folder(cache)
    with _tree(cache, trees, url, commit) as tree:
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _copy(tree, dest)
    try:
        yield dest
    finally:
        _discard(dest, trees.parent / "trash")


def _discard(folder: Path, trash: Path) -> None:
    """Remove ``folder`` off the job's path: renamed into ``trash`` at once (gone from where it
    was), deleted by a background thread; where it cannot be moved, deleted here."""
    try:
        trash.mkdir(parents=True, exist_ok=True)
        moved = trash / f"{folder.name}.{uuid.uuid4().hex[:8]}"
        os.rename(folder, moved)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return
    removals = _remover()
    if trash not in _emptied:  # what an earlier process left there (it ended before its remover)
        _emptied.add(trash)
        for left in trash.iterdir():
            if left != moved:
                removals.put(left)
    removals.put(moved)


_removals: queue.SimpleQueue[Path] | None = None
_removals_lock = threading.Lock()
_emptied: set[Path] = set()


def _remover() -> queue.SimpleQueue[Path]:
    global _removals
    with _removals_lock:
        if _removals is None:
            _removals = queue.SimpleQueue()
            threading.Thread(target=_remove_forever, args=(_removals,), daemon=True, name="forge-trash").start()
        return _removals


def _remove_forever(removals: queue.SimpleQueue[Path]) -> None:
    while True:
        shutil.rmtree(removals.get(), ignore_errors=True)


@contextmanager
def _tree(cache: GitCache, trees: Path, url: str, commit: str) -> Iterator[Path]:
    """The materialised tree of ``commit``, kept from removal for the block (a shared lock)."""
    if FULL_SHA.match(commit) and (trees / commit).is_dir():
        with _using(trees, commit) as tree:
            if tree is not None:
                yield tree
                return
    with cache.holding(url, commit) as (reader, resolved):
        if not (trees / resolved).is_dir():
            _materialise(reader.git_dir, url, commit, resolved, trees)
    with _using(trees, resolved) as tree:
        if tree is None:  # removed between the two: extremely unlikely, and an error to say so
            raise GitError(f"the materialised tree of {resolved} was removed while in use", where=str(trees))
        yield tree
    _evict(trees, keep=KEEP_TREES)


@contextmanager
def _using(trees: Path, commit: str) -> Iterator[Path | None]:
    """``trees/commit`` under a shared lock (None: it is gone or being removed)."""
    fd = os.open(trees / f"{commit}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        tree = trees / commit
        if not tree.is_dir():
            yield None
            return
        with contextlib.suppress(OSError):
            os.utime(tree)  # recently used: kept by the eviction
        yield tree
    finally:
        os.close(fd)


def _materialise(git_dir: Path, url: str, commit: str, resolved: str, trees: Path) -> None:
    trees.mkdir(parents=True, exist_ok=True)
    staging = trees / f".{resolved}.{uuid.uuid4().hex[:8]}"
    dot_git = _repository(staging, git_dir, resolved)
    env = {**os.environ, "GIT_INDEX_FILE": str(dot_git / "index")}
    try:
        for args in (("read-tree", resolved), ("checkout-index", "--all", "--force")):
            done = subprocess.run(
                ["git", f"--git-dir={git_dir}", f"--work-tree={staging}", *args],
                env=env, capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                message = redact_urls(done.stderr.strip() or f"git {args[0]} failed", url)
                raise GitError(f"cannot check out {commit} of {redact_url(url)}: {message}", where=commit)
        os.rename(staging, trees / resolved)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _repository(tree: Path, mirror: Path, commit: str) -> Path:
    """A small ``.git`` in ``tree``: HEAD detached at ``commit``, objects borrowed from the mirror
    (an alternate), its index the checkout's — so ``git rev-parse HEAD``, ``git status`` and
    ``git describe`` work in a checkout as in a clone."""
    dot_git = tree / ".git"
    for folder in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (dot_git / folder).mkdir(parents=True)
    (dot_git / "HEAD").write_text(f"{commit}\n")
    (dot_git / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
    (dot_git / "objects" / "info" / "alternates").write_text(f"{(mirror / 'objects').resolve()}\n")
    return dot_git


def _copy(tree: Path, dest: Path) -> None:
    """A copy of ``tree`` at ``dest`` that shares nothing a write could change."""
    cp = shutil.which("cp")
    if cp is not None:
        done = subprocess.run([cp, "-a", "--reflink=auto", str(tree), str(dest)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(tree, dest, symlinks=True)


def _evict(trees: Path, *, keep: int) -> None:
    """Remove the least recently used trees beyond ``keep``; one in use is left for next time."""
    try:
        found = [p for p in trees.iterdir() if p.is_dir() and FULL_SHA.match(p.name)]
    except OSError:
        return
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[keep:]:
        fd = os.open(trees / f"{old.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            gone = old.with_name(f".gone-{old.name}-{uuid.uuid4().hex[:8]}")
            with contextlib.suppress(OSError):
                os.rename(old, gone)
                shutil.rmtree(gone, ignore_errors=True)
        finally:
            os.close(fd)

