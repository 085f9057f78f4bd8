"""Committing ReleasePointers to the GitOps repository so that concurrent deployments never lose
an update and never force-push.

Each attempt fetches the branch, resets a private clone onto the remote tip and writes the
pointers there (a rebase of the one commit, done by re-applying it: the pointer files are
whole, so a concurrent change of the same file is replaced, never merged), commits and pushes
with a plain fast-forward refspec, leased to the tip it was built on. A first attempt may skip
the fetch and build on the tip the clone last saw: if the remote moved on, git refuses the push
from the remote's advertisement alone, and the attempt fetches. A push the remote refuses
because it moved on (or any failure that is not an authentication one) is retried after a
backoff, at most ``push_attempts`` times.
A tip whose tree already holds the pointers (same release and number) is a no-op: the commit
that landed them is the answer, so a redelivered job makes no second commit.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from forge_core.sdk import (
    ForgeError,
    GitOpsError,
    ReleasePointer,
    WorkWithdrawn,
    mask_secrets,
    parse_release_pointer,
    redact_url,
)
from forge_gitops import objects
from forge_gitops.credentials import GitAuth
from forge_gitops.settings import GitOpsSettings

AUTH_FAILURES = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "permission denied",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "host key verification failed",
)


class Stop(Protocol):
    """What withdraws a publish between attempts: a job's ``threading.Event``, or a batch's."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


# What git says when a fast-forward push lost the race to another writer.
OVERTAKEN_JITTER_SECONDS = 0.02
OVERTAKEN = ("non-fast-forward", "fetch first", "stale info", "[rejected]", "failed to update ref", "cannot lock ref")


class GitOpsPushError(ForgeError):
    """The pointer commit did not land: ``where`` names the repository (credentials redacted)."""

    code = "gitops_push_failed"
    exit_code = 1


@dataclass(frozen=True)
class Landed:
    commit: str  # the GitOps commit holding the pointers
    created: bool  # False: the tip already held them (a redelivery)
    attempts: int


class _GitFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def overtaken(self) -> bool:
        """The push was refused because another writer landed first: the remote works."""
        text = self.message.lower()
        return any(marker in text for marker in OVERTAKEN)

    @property
    def auth(self) -> bool:
        text = self.message.lower()
        return any(marker in text for marker in AUTH_FAILURES)


class GitOpsRepository:
    """The configured GitOps repository, written through private clones under ``work_root``."""

    def __init__(self, settings: GitOpsSettings, auth: GitAuth, work_root: Path) -> None:
        self.settings, self.auth, self.work_root = settings, auth, work_root
        self.url = settings.repository_url()
        self.where = redact_url(self.url)

    # --- git ----------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        # The operator's GIT_* (a GIT_DIR, another GIT_SSH_COMMAND…) must not redirect these commands;
        # a private CA still reaches HTTPS.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "SSH_ASKPASS")) or k in ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH")}
        env.update(
            GIT_TERMINAL_PROMPT="0",  # never wait for a password on a terminal
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,  # the operator's ~/.gitconfig (credential helpers…) plays no part
            GIT_AUTHOR_NAME=self.settings.author_name,
            GIT_AUTHOR_EMAIL=self.settings.author_email,
            GIT_COMMITTER_NAME=self.settings.author_name,
            GIT_COMMITTER_EMAIL=self.settings.author_email,
        )
        env.update(self.auth.env)
        return env

    def _git(self, cwd: Path | None, *args: str, input: bytes | None = None) -> str:
        return self._git_bytes(cwd, *args, input=input).decode(errors="replace")

    def _git_bytes(self, cwd: Path | None, *args: str, input: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, env=self._env(), input=input, capture_output=True,
                timeout=self.settings.git_timeout_seconds, check=False,
            )
        except subprocess.TimeoutExpired:
            raise _GitFailed(f"git {args[0]} took longer than {self.settings.git_timeout_seconds:g}s") from None
        if done.returncode != 0:
            # A refused push says why on stdout (its porcelain '!' lines: "[rejected] (fetch first)").
            refused = [line for line in done.stdout.decode(errors="replace").splitlines() if line.startswith("!")]
            text = "\n".join([*refused, done.stderr.decode(errors="replace").strip()]).strip()
            raise _GitFailed(self._mask(text or f"git {args[0]} failed"))
        return done.stdout

    def _mask(self, text: str) -> str:
        return mask_secrets(text.replace(self.url, self.where), self.auth.secrets)

    # --- the embedded repository --------------------------------------------------------------

    def ensure_embedded(self) -> None:
        """Create ``<state_dir>/gitops.git`` (bare, an initial commit on the branch) if missing.
        Built aside and renamed into place, so concurrent first users see it whole or not at all."""
        target = self.settings.embedded_path()
        if (target / "HEAD").exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".gitops-", dir=target.parent))
        try:
            branch = self.settings.branch
            self._git(None, "init", "--bare", "--quiet", f"--initial-branch={branch}", str(building))
            for key, value in (("receive.denyNonFastForwards", "true"), ("receive.denyDeletes", "true"),
                               ("core.logAllRefUpdates", "true")):
                self._git(building, "config", key, value)
            empty_tree = self._git(building, "mktree", input=b"").strip()
            root = self._git(building, "commit-tree", empty_tree, "-m", "Initialise the GitOps repository").strip()
            self._git(building, "update-ref", f"refs/heads/{branch}", root, "0" * 40)
            try:
                building.rename(target)
            except OSError:  # another user created it meanwhile: theirs is as good
                if not (target / "HEAD").exists():
                    raise
        except _GitFailed as failed:
            raise GitOpsPushError(f"cannot create the embedded GitOps repository: {failed.message}",
                                  where=str(target)) from None
        finally:
            shutil.rmtree(building, ignore_errors=True)

    # --- publishing ---------------------------------------------------------------------------

    def publish(
        self,
        pointers: Sequence[ReleasePointer],
        message: str,
        *,
        stop: Stop | None = None,
        log: Callable[[str], None] = lambda _line: None,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> Landed:
        """Land ``pointers`` in one commit on the branch (or find them there already)."""
        if self.settings.embedded:
            self.ensure_embedded()
        self.work_root.mkdir(parents=True, exist_ok=True)
        with self._clone() as clone:
            return self._attempts(clone, pointers, message, stop, log, heartbeat)

    @contextmanager
    def _clone(self) -> Iterator[Path]:
        """The worker's clone of this remote, kept between publishes (its fetches are then
        incremental, its setup paid once) while no other publish holds it; else a throwaway one.
        Each attempt resets it onto the remote tip, so what a publish leaves is never reused as
        is; one that failed is removed all the same, in case git left it broken."""
        kept = self.work_root / f"clone-{hashlib.sha256(self.url.encode()).hexdigest()[:16]}"
        with open(f"{kept}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                clone = Path(tempfile.mkdtemp(prefix="gitops-", dir=self.work_root))
                try:
                    yield clone
                finally:
                    shutil.rmtree(clone, ignore_errors=True)
                return
            try:
                yield kept
            except BaseException:
                shutil.rmtree(kept, ignore_errors=True)
                raise

    def _attempts(
        self,
        clone: Path,
        pointers: Sequence[ReleasePointer],
        message: str,
        stop: Stop | None,
        log: Callable[[str], None],
        heartbeat: Callable[[], None],
    ) -> Landed:
        branch = self.settings.branch
        attempts = self.settings.push_attempts
        try:
            if not (clone / "HEAD").is_file():
                shutil.rmtree(clone, ignore_errors=True)
                # Bare, no sample hooks: the commit is built with plumbing, no working tree needed.
                self._git(None, "init", "--bare", "--quiet", "--template=", str(clone))
                self._git(clone, "remote", "add", "origin", self.url)
        except _GitFailed as failed:
            raise GitOpsPushError(failed.message, where=self.where) from None
        last = ""
        for attempt in range(1, attempts + 1):
            if stop is not None and stop.is_set():
                raise WorkWithdrawn("the deployment job was withdrawn before its pointer commit landed")
            heartbeat()
            try:
                landed = self._attempt(clone, branch, pointers, message, attempt)
            except _GitFailed as failed:
                last = failed.message
                if failed.auth:
                    raise GitOpsPushError(f"the GitOps remote refused the credentials: {last}", where=self.where,
                                          details={"attempts": attempt}) from None
                log(f"gitops: attempt {attempt}/{attempts} did not land: {last.splitlines()[-1] if last else ''}")
                if attempt < attempts:
                    self._sleep(attempt, stop, overtaken=failed.overtaken)
                continue
            log(f"gitops: {'committed' if landed.created else 'already held by'} {landed.commit} "
                f"on {branch} of {self.where} (attempt {attempt})")
            return landed
        raise GitOpsPushError(f"gave up after {attempts} attempts; the last one: {last}", where=self.where,
                              details={"attempts": attempts})

    def _attempt(self, clone: Path, branch: str, pointers: Sequence[ReleasePointer], message: str,
                 attempt: int) -> Landed:
        """One fetch, one read of the tip's pointer files and one commit built in process
        (``objects``: one pack, no working tree, no git process), one fast-forward push.

        A first attempt starts without the fetch when the clone knows a tip (the one it last
        fetched or pushed): most often, and always with one writer, the remote is still there,
        and the push is then all the network the deployment costs. If the remote moved on, git
        refuses the push from the remote's advertisement alone (nothing is sent), and the
        attempt goes on with the fetch."""
        remote = f"refs/remotes/origin/{branch}"
        if attempt == 1:
            try:
                landed = self._land_on(clone, branch, remote, pointers, message, attempt, fetched=False)
            except _GitFailed as failed:
                if not failed.overtaken:
                    raise
            else:
                if landed is not None:
                    return landed
        try:
            self._git(clone, "-c", f"protocol.version={self.settings.fetch_protocol}", "fetch", "--quiet",
                      "--no-tags", "origin", f"+refs/heads/{branch}:{remote}")
        except _GitFailed as failed:
            if "couldn't find remote ref" in failed.message.lower():
                raise GitOpsPushError(
                    f"branch {branch!r} does not exist in the GitOps repository; create it with an initial commit",
                    where=self.where,
                ) from None
            raise
        landed = self._land_on(clone, branch, remote, pointers, message, attempt, fetched=True)
        if landed is None:  # a fetched tip always answers; kept explicit, not an assert (python -O)
            raise _GitFailed(f"the fetch of {branch} left no answer in the clone")
        return landed

    def _land_on(self, clone: Path, branch: str, remote: str, pointers: Sequence[ReleasePointer], message: str,
                 attempt: int, *, fetched: bool) -> Landed | None:
        """Commit ``pointers`` on the clone's tip of ``remote`` and push it. ``None`` when an unfetched
        tip cannot answer: the clone knows none yet, or it already holds the pointers (whether the
        remote still does, only a fetch tells)."""
        read = self._read_tip(clone, remote, pointers)
        if read is None:
            if fetched:
                raise _GitFailed(f"the fetch did not leave {remote} in the clone")
            return None
        tip, present = read
        changed = [p for p in pointers if not self._holds(present.get(str(p.path)), p)]
        if not changed:
            if not fetched:
                return None
            paths = [str(p.path) for p in pointers]
            landed_by = self._git(clone, "log", "-1", "--format=%H", tip, "--", *paths).strip() or tip
            return Landed(landed_by, created=False, attempts=attempt)
        commit = self._commit(clone, tip, changed, message)
        # A fast-forward refspec (no '+'), landing only onto the tip it was built on: the lease
        # makes the remote refuse it if it moved on, or if the branch is gone (never recreated from
        # an old tip). A landed push moves the clone's remote-tracking ref too (the remote's fetch
        # refspec maps it): the tip the next publish starts from.
        self._git(clone, "push", "--quiet", "--porcelain", f"--force-with-lease=refs/heads/{branch}:{tip}",
                  "origin", f"{commit}:refs/heads/{branch}")
        self._pack_now_and_then(clone)
        return Landed(commit, created=True, attempts=attempt)

    def _read_tip(self, clone: Path, remote: str,
                  pointers: Sequence[ReleasePointer]) -> tuple[str, dict[str, str]] | None:
        """The clone's tip of ``remote`` and the text of each pointer file it holds (``None``: the
        clone has no such ref yet)."""
        try:
            return objects.read_tip(clone, remote, [str(p.path) for p in pointers])
        except (OSError, ValueError, KeyError) as failed:  # a clone git left broken: the attempt fails
            raise _GitFailed(f"cannot read the clone's tip of {remote}: {failed}") from None

    def _commit(self, clone: Path, parent: str, pointers: Sequence[ReleasePointer], message: str) -> str:
        """A commit on ``parent`` writing ``pointers``' files."""
        identity = f"{self.settings.author_name} <{self.settings.author_email}>"
        files = {str(p.path): p.render().encode() for p in pointers}
        try:
            return objects.write_commit(clone, parent, files, message, identity)
        except (OSError, ValueError, KeyError) as failed:
            raise _GitFailed(f"cannot build the pointer commit on {parent}: {failed}") from None

    def _pack_now_and_then(self, clone: Path) -> None:
        """Each commit and each fetch is a small pack of its own; a kept clone repacks them once
        there are many, dropping what no ref reaches (commits the remote refused)."""
        if len(list((clone / "objects" / "pack").glob("*.pack"))) > 50:
            self._git(clone, "gc", "--quiet", "--prune=now")

    @staticmethod
    def _holds(present: str | None, pointer: ReleasePointer) -> bool:
        """The tip's file for ``pointer`` already deploys the same release (its time and actor aside)."""
        if present is None:
            return False
        try:
            held = parse_release_pointer(present, pointer.path)
        except GitOpsError:
            return False  # a malformed pointer is rewritten
        return (held.release, held.release_number, held.repository) == (
            pointer.release, pointer.release_number, pointer.repository)

    def _sleep(self, attempt: int, stop: Stop | None, *, overtaken: bool = False) -> None:
        # Overtaken by another writer: the remote works and that writer is done, so go again at
        # once, a few milliseconds of jitter keeping racers out of step (each round lands one of
        # them, so they all get through); any other failure backs off exponentially, as a remote
        # in trouble needs.
        if overtaken:
            delay = random.uniform(0, min(self.settings.backoff_seconds / 4, OVERTAKEN_JITTER_SECONDS))
        else:
            ceiling = min(self.settings.backoff_max_seconds, self.settings.backoff_seconds * 2 ** (attempt - 1))
            delay = random.uniform(ceiling / 2, ceiling)  # jitter: racing writers spread out
        if stop is not None:
            stop.wait(delay)
        else:
            time.sleep(delay)
