"""The state directory of the embedded defaults: checked before use, and claimed by one process
where two would damage it (a private NATS server's JetStream store)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from filelock import FileLock, Timeout

from forge_core.domain.errors import ConfigurationError

HINT = "set FORGE_STATE_DIR to a folder this user can write"


def usable_folder(path: Path, what: str = "state directory") -> Path:
    """``path``, created if missing and proven writable, or one readable error saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except FileExistsError:
        raise ConfigurationError(f"{what} {path} is not usable: it is a file, not a folder; {HINT}",
                                 where="FORGE_STATE_DIR") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"{what} {path} is not usable: {reason}; {HINT}", where="FORGE_STATE_DIR") from None
    return path


class FolderClaim:
    """An exclusive claim on a folder for one process (an OS file lock, so a killed holder frees it).

    ``purpose`` says in the refusal why a second user cannot share the folder."""

    def __init__(self, folder: Path, purpose: str) -> None:
        self.folder, self.purpose = folder, purpose
        self._lock = FileLock(folder / ".claim.lock", thread_local=False)  # released by whichever thread stops
        self._owner = folder / ".claim.owner"

    def acquire(self) -> None:
        usable_folder(self.folder)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ConfigurationError(
                f"{self.folder} is in use by another forge process ({self._holder()}): {self.purpose}; "
                "wait for it to finish, or set FORGE_STATE_DIR to another folder",
                where="FORGE_STATE_DIR",
            ) from None
        self._owner.write_text(json.dumps({"pid": os.getpid(), "since": time.time(), "argv": sys.argv[:3]}))

    def release(self) -> None:
        if self._lock.is_locked:
            self._owner.unlink(missing_ok=True)
            self._lock.release()

    def held(self) -> bool:
        """Whether a live process holds the claim, as its owner record says (read only: looking
        never takes the lock, so it cannot make a starting holder fail)."""
        try:
            pid = int(json.loads(self._owner.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # killed outright: its record stayed behind
        except PermissionError:
            return True
        return True

    def _holder(self) -> str:
        try:
            owner = json.loads(self._owner.read_text())
        except (OSError, ValueError):
            return "holder unknown"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner.get("since", 0))))
        return f"pid {owner.get('pid')}, since {since}"
