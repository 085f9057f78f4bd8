"""The cache of bare mirrors that discovery and checkouts share: one set of safety rules.

One mirror per repository URL (``<cache>/<hash>.git``). Users of one mirror, threads or processes,
are serialised by a file lock that gives up after ``lock_timeout``. A mirror that git can no
longer read, or that mirrors another URL, is removed and cloned again, and so is one that cannot
fetch. A revision is fetched first unless it is a full commit id already present (branches and
tags move; a commit never changes). Credentials in a URL never reach an error message.
"""

from __future__ import annotations

import configparser
import hashlib
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
from filelock import FileLock, Timeout

from forge_core.adapters.git.reader import CommitReader, GitError, run_git
from forge_core.domain.secrets import redact_url, redact_urls
from forge_core.settings.git import GitSettings

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def _mirror_name(url: str) -> str:
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"


class GitCache:
    """One bare mirror per repository URL under ``cache_dir``; safe for concurrent users."""

    def __init__(self, settings: GitSettings) -> None:
        self.root = settings.cache_dir
        self.lock_timeout = settings.lock_timeout

    @classmethod
    def for_worker(cls, cache_dir: Path) -> GitCache:
        """The mirrors in a worker's cache folder (``<cache_dir>/git``), whichever job needs them."""
        return cls(GitSettings(cache_dir=cache_dir / "git"))

    def path(self, url: str) -> Path:
        return self.root / _mirror_name(url)

    def open(self, url: str, rev: str) -> tuple[CommitReader, str]:
        """A reader of the mirror of ``url`` holding ``rev``, and the commit id."""
        with self.holding(url, rev) as found:
            return found

    @contextmanager
    def holding(self, url: str, rev: str) -> Iterator[tuple[CommitReader, str]]:
        """Like :meth:`open`, with the mirror locked against other users until the block ends."""
        with self.locked(url) as mirror:
            yield self._current(mirror, url, rev)

    @contextmanager
    def locked(self, url: str) -> Iterator[Path]:
        """The mirror's path (it need not exist), for the sole use of the block."""
        if not url:
            raise GitError("no repository given (a URL or path git can clone)", where="repository")
        self.root.mkdir(parents=True, exist_ok=True)
        mirror = self.path(url)
        lock = FileLock(mirror.with_suffix(".lock"), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            message = f"the mirror is locked by another user for {self.lock_timeout}s"
            raise GitError(message, where=str(mirror)) from None
        try:
            yield mirror
        finally:
            lock.release()

    def _current(self, mirror: Path, url: str, rev: str) -> tuple[CommitReader, str]:
        reader = self._usable(mirror, url)
        if reader is None:
            reader = self._clone(mirror, url)
        if FULL_SHA.match(rev):  # a commit never changes: present means current
            try:
                return reader, reader.resolve(rev)
            except GitError:
                pass
        try:
            reader.repo.remote("origin").fetch(prune=True)
        except git.GitCommandError:
            reader = self._clone(mirror, url)  # a mirror that cannot fetch is rebuilt once
        try:
            return reader, reader.resolve(rev)
        except GitError:
            raise GitError(f"commit {rev!r} is not in {redact_url(url)}", where=rev) from None

    def _usable(self, mirror: Path, url: str) -> CommitReader | None:
        """The mirror if git can read it and it mirrors ``url``; None if absent or corrupt."""
        if not mirror.exists():
            return None
        try:
            reader = CommitReader(mirror)
            if reader.repo.remote("origin").url != url:
                raise ValueError("mirror of another URL")
            run_git(reader.git_dir, "rev-parse", "--is-bare-repository")
            run_git(reader.git_dir, "for-each-ref", "--count=1")
            return reader
        except (GitError, ValueError, git.GitError, configparser.Error):  # gitpython reads config itself
            shutil.rmtree(mirror, ignore_errors=True)
            return None

    def _clone(self, mirror: Path, url: str) -> CommitReader:
        shutil.rmtree(mirror, ignore_errors=True)
        try:
            git.Repo.clone_from(url, mirror, mirror=True)
        except git.GitCommandError as exc:
            shutil.rmtree(mirror, ignore_errors=True)
            detail = redact_urls(str(exc.stderr).strip() or str(exc), url)
            raise GitError(f"cannot clone: {detail}", where=redact_url(url)) from None
        return CommitReader(mirror)
