"""Reading commits of git repositories: a commit's tree and blobs, or a working tree's files.

Discovery reads the tree of the requested commit (``git ls-tree``) and its blobs (``git cat-file
--batch``, one process for all of them), never the working tree, so uncommitted files never leak
in.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import git

from forge_core.domain.errors import ForgeError


class GitError(ForgeError):
    """A repository, commit or ref that cannot be read; ``where`` names it."""

    code = "git_error"
    exit_code = 2


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # "blob" or "tree"
    oid: str


def run_git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    """git's output; a GitError with its message when it fails."""
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
            return run_git(self.git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
        except GitError:
            raise GitError(f"no commit {rev!r} in this repository", where=rev) from None

    def has_tag(self, tag: str) -> bool:
        return bool(run_git(self.git_dir, "tag", "--list", tag).strip())

    def tags_at(self, commit: str) -> list[str]:
        return sorted(run_git(self.git_dir, "tag", "--points-at", commit).decode().split())

    def current_branch(self) -> str | None:
        try:
            return self.repo.active_branch.name
        except TypeError:  # detached HEAD
            return None

    def entries(self, commit: str) -> list[TreeEntry]:
        """Every file and folder of the commit's tree, with its object id."""
        out = run_git(self.git_dir, "ls-tree", "-r", "-t", "-z", "--full-tree", commit)
        entries = []
        for record in out.split(b"\0"):
            if record:
                meta, _, path = record.partition(b"\t")
                _mode, kind, oid = meta.decode().split()
                entries.append(TreeEntry(path.decode(), kind, oid))
        return entries

    def blob_sizes(self, oids: Iterable[str]) -> dict[str, int]:
        """The size in bytes of each blob, without reading it (one ``git cat-file --batch-check``)."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = run_git(self.git_dir, "cat-file", "--batch-check", input="".join(f"{o}\n" for o in wanted).encode())
        sizes = {}
        for oid, line in zip(wanted, out.decode().splitlines(), strict=True):
            fields = line.split()
            if len(fields) != 3:
                raise GitError(f"cannot read object {oid}", where=str(self.git_dir))
            sizes[oid] = int(fields[2])
        return sizes

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]:
        """The text of each blob, read by one ``git cat-file --batch``."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = run_git(self.git_dir, "cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode())
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


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class WorkingTreeReader:
    """The configuration files as they are on disk, edits not yet committed included (what
    ``forge validate`` checks); ids are git's, so the discovery cache works the same."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._texts: dict[str, str] = {}
        self._sizes: dict[str, int] = {}

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
                self._sizes[oid] = len(data)
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

    def blob_sizes(self, oids: Iterable[str]) -> dict[str, int]:
        return {oid: self._sizes[oid] for oid in oids}

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]:
        return {oid: self._texts[oid] for oid in oids}
