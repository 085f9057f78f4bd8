"""A commit's files on disk for a job: a detached worktree of the cache's mirror.

The one function jobs check out through, so that another way (a shared tree, a sparse copy) can
replace it without touching them. Adding and removing a worktree changes the mirror, so both
happen under the mirror's lock; the block itself runs unlocked.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from forge_core.adapters.git.cache import GitCache
from forge_core.adapters.git.reader import GitError, run_git
from forge_core.domain.secrets import redact_url, redact_urls


@contextmanager
def checked_out(cache: GitCache, url: str, commit: str, dest: Path) -> Iterator[Path]:
    """The tree of ``commit`` of ``url`` at ``dest`` for the duration of the block."""
    with cache.holding(url, commit) as (reader, resolved):
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_git(reader.git_dir, "worktree", "add", "--detach", "--force", str(dest), resolved)
        except GitError as error:
            message = redact_urls(error.message, url)
            raise GitError(f"cannot check out {commit} of {redact_url(url)}: {message}", where=commit) from None
    try:
        yield dest
    finally:
        with cache.locked(url) as mirror:
            try:
                run_git(mirror, "worktree", "remove", "--force", str(dest))
            except GitError:  # a worktree git no longer knows (its mirror was rebuilt): just files
                shutil.rmtree(dest, ignore_errors=True)
                with suppress(GitError):
                    run_git(mirror, "worktree", "prune")
