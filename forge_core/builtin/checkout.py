"""Checking out a task's commit: a worktree of a mirror kept in the worker's cache.

The mirror (``<cache>/git/<hash>.git``) is cloned once per repository (a local path or a URL)
and fetched only when a commit is missing, so a warm worker checks out in milliseconds. Each job
gets its own detached worktree, removed afterwards. A file lock serialises changes to a mirror
between the threads and processes sharing one cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.secrets import redact_url, redact_urls


class CheckoutError(ForgeError):
    code = "checkout_failed"


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _run(*args: str, cwd: Path | None = None, what: str, url: str = "") -> str:
    done = _git(*args, cwd=cwd)
    if done.returncode != 0:
        output = redact_urls(done.stderr.strip() or done.stdout.strip(), url)  # git echoes the URL
        raise CheckoutError(f"{what}: {output}", where=" ".join(args[:2]))
    return done.stdout.strip()


@contextmanager
def _locked(mirror: Path) -> Iterator[None]:
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mirror_path(repository: str, cache_dir: Path) -> Path:
    digest = hashlib.sha256(repository.encode()).hexdigest()[:16]
    return cache_dir / "git" / f"{digest}.git"


def _resolve(mirror: Path, commit: str) -> str | None:
    done = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=mirror)
    return done.stdout.strip() if done.returncode == 0 else None


@contextmanager
def checked_out(repository: str, commit: str, cache_dir: Path, dest: Path) -> Iterator[Path]:
    """The tree of ``commit`` of ``repository`` at ``dest`` for the duration of the block."""
    if not repository:
        raise ConfigurationError("the job names no repository", where="payload.source.repository")
    mirror = mirror_path(repository, cache_dir)
    with _locked(mirror):
        if not (mirror / "HEAD").exists():
            shutil.rmtree(mirror, ignore_errors=True)
            _run(
                "clone", "--mirror", "--quiet", repository, str(mirror),
                what=f"cannot clone {redact_url(repository)}", url=repository,
            )
        resolved = _resolve(mirror, commit)
        if resolved is None:
            _run(
                "fetch", "--quiet", "--prune", "origin", cwd=mirror,
                what=f"cannot fetch {redact_url(repository)}", url=repository,
            )
            resolved = _resolve(mirror, commit)
        if resolved is None:
            raise CheckoutError(f"commit {commit!r} is not in {redact_url(repository)}", where="payload.source.commit")
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _run("worktree", "add", "--detach", "--force", str(dest), resolved, cwd=mirror,
             what=f"cannot check out {commit} of {repository}")
    try:
        yield dest
    finally:
        with _locked(mirror):
            if _git("worktree", "remove", "--force", str(dest), cwd=mirror).returncode != 0:
                shutil.rmtree(dest, ignore_errors=True)
                _git("worktree", "prune", cwd=mirror)
