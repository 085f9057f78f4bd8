"""Reading commits of git repositories, and the cache of bare mirrors workers keep.

Discovery reads the tree of the requested commit (``git ls-tree``) and its blobs (``git cat-file
--batch``, one process for all of them), never the working tree, so uncommitted files never leak
in. The cache holds one bare mirror per repository URL; users of one mirror are serialised by a
file lock; a mirror that git can no longer read is removed and cloned again.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import git
from filelock import FileLock, Timeout

from forge_core.domain.errors import ForgeError
from forge_core.domain.secrets import redact_url, redact_urls
from forge_core.settings.git import GitSettings

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class GitError(ForgeError):
    """A repository, commit or ref that cannot be read; ``where`` names it."""

    code = "git_error"
    exit_code = 2


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # "blob" or "tree"
    oid: str


def _git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], input=input, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed", where=str(git_dir))
    return done.stdout


class CommitReader:
    """Reads commits of one repository (a working clone or a bare mirror)."""

    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError("not a git repository", where=str(path)) from None
        self.git_dir = Path(self.repo.git_dir)
        self.name = path.resolve().name.removesuffix(".git")

    def resolve(self, rev: str) -> str:
        """The commit id ``rev`` names (a sha, branch or tag), or a GitError naming the ref."""
        try:
            return _git(self.git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
        except GitError:
            raise GitError(f"no commit {rev!r} in this repository", where=rev) from None

    def has_tag(self, tag: str) -> bool:
        return bool(_git(self.git_dir, "tag", "--list", tag).strip())

    def tags_at(self, commit: str) -> list[str]:
        return sorted(_git(self.git_dir, "tag", "--points-at", commit).decode().split())

    def current_branch(self) -> str | None:
        try:
            return self.repo.active_branch.name
        except TypeError:  # detached HEAD
            return None

    def entries(self, commit: str) -> list[TreeEntry]:
        """Every file and folder of the commit's tree, with its object id."""
        out = _git(self.git_dir, "ls-tree", "-r", "-t", "-z", "--full-tree", commit)
        entries = []
        for record in out.split(b"\0"):
            if record:
                meta, _, path = record.partition(b"\t")
                _mode, kind, oid = meta.decode().split()
                entries.append(TreeEntry(path.decode(), kind, oid))
        return entries

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]:
        """The text of each blob, read by one ``git cat-file --batch``."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = _git(self.git_dir, "cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode())
        blobs, index = {}, 0
        for oid in wanted:
            end = out.index(b"\n", index)
            header = out[index:end].decode().split()
            if len(header) != 3:
                raise GitError(f"cannot read object {oid}", where=str(self.git_dir))
            size = int(header[2])
            blobs[oid] = out[end + 1 : end + 1 + size].decode("utf-8", errors="replace")
            index = end + 1 + size + 1
        return blobs


def _mirror_name(url: str) -> str:
    # The same name and lock file as the ci handler's checkouts, so one worker cache holds one
    # mirror per repository whichever job needs it (filelock's Unix lock is a flock too).
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"


class GitCache:
    """One bare mirror per repository URL under ``cache_dir``; safe for concurrent users."""

    def __init__(self, settings: GitSettings) -> None:
        self.root = settings.cache_dir
        self.lock_timeout = settings.lock_timeout

    def path(self, url: str) -> Path:
        return self.root / _mirror_name(url)

    def open(self, url: str, rev: str) -> tuple[CommitReader, str]:
        """A reader of the mirror of ``url`` holding ``rev``, and the commit id. Fetches first,
        unless ``rev`` is a full commit id already there (branches and tags move); rebuilds a
        corrupt mirror."""
        self.root.mkdir(parents=True, exist_ok=True)
        mirror = self.path(url)
        try:
            with FileLock(mirror.with_suffix(".lock"), timeout=self.lock_timeout):
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
                return reader, reader.resolve(rev)
        except Timeout:
            message = f"the mirror is locked by another user for {self.lock_timeout}s"
            raise GitError(message, where=str(mirror)) from None

    def _usable(self, mirror: Path, url: str) -> CommitReader | None:
        """The mirror if git can read it and it mirrors ``url``; None if absent or corrupt."""
        if not mirror.exists():
            return None
        try:
            reader = CommitReader(mirror)
            if reader.repo.remote("origin").url != url:
                raise ValueError("mirror of another URL")
            _git(reader.git_dir, "rev-parse", "--is-bare-repository")
            _git(reader.git_dir, "for-each-ref", "--count=1")
            return reader
        except (GitError, ValueError, git.GitError):
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


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class WorkingTreeReader:
    """The configuration files as they are on disk, edits not yet committed included (what
    ``forge validate`` checks); ids are git's, so the discovery cache works the same."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._texts: dict[str, str] = {}

    def _files(self) -> list[str]:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True, check=True,
            ).stdout
            return [p for p in out.decode().split("\0") if p]
        except (OSError, subprocess.CalledProcessError):  # not a git repository: every file
            return [str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()]

    def entries(self, commit: str) -> list[TreeEntry]:
        """The files discovery can read: every ``.forge/`` folder's, ``cue.mod/``'s and other
        ``.cue`` files (a module's packages); the folders holding ``.forge`` or ``cue.mod`` files."""
        blobs: dict[str, str] = {}
        for path in self._files():
            parts = path.split("/")
            wanted = ".forge" in parts[:-1] or parts[0] == "cue.mod" or path.endswith(".cue")
            if wanted and (self.root / path).is_file():
                data = (self.root / path).read_bytes()
                oid = _blob_id(data)
                self._texts[oid] = data.decode("utf-8", errors="replace")
                blobs[path] = oid
        folders: dict[str, list[str]] = {}
        for path, oid in blobs.items():
            parts = path.split("/")
            if ".forge" in parts[:-1]:
                folders.setdefault("/".join(parts[: parts.index(".forge") + 1]), []).append(f"{path}:{oid}")
            elif parts[0] == "cue.mod":
                folders.setdefault("cue.mod", []).append(f"{path}:{oid}")
        trees = [
            TreeEntry(folder, "tree", hashlib.sha1("\n".join(sorted(i)).encode(), usedforsecurity=False).hexdigest())
            for folder, i in folders.items()
        ]
        return [*trees, *(TreeEntry(path, "blob", oid) for path, oid in blobs.items())]

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]:
        return {oid: self._texts[oid] for oid in oids}
