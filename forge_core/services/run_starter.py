"""The run starter: hands each new run (webhook push, ``POST /v1/runs``) to the orchestrator once.

Every API replica (and ``forge server``) may run one; a run is taken through a durable claim in
the database (:class:`~forge_core.services.store.RunClaimStore`), so however many starters look,
one launches it. The launcher is what "start" means where it runs: on one machine the embedded
pipeline, in a fleet the Argo orchestrator. A run the launcher cannot start is closed failed with
the reason; a starter that dies between its claim and the launch leaves the run pending, and the
claim is taken again once it is ``stale_after`` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from forge_core.domain.errors import ForgeError
from forge_core.domain.models import RunStatus
from forge_core.services import schemas as s
from forge_core.services.store import RunClaimStore, RunStore

log = logging.getLogger("forge.run_starter")
ACTOR = "run-starter"


class RunLauncher(Protocol):
    async def launch(self, run: s.RunSummary) -> None:
        """Start ``run`` (returns once it is handed over); raising says why it cannot start."""
        ...


class StarterStore(RunClaimStore, RunStore, Protocol):
    """What the starter needs of the database: claims, and closing a run it could not start."""


def default_owner() -> str:
    """This process, as a claim names it: host, pid and a random part (pids repeat across pods)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunStarter:
    def __init__(
        self,
        store: StarterStore,
        launcher: RunLauncher,
        *,
        owner: str | None = None,
        poll_seconds: float = 1.0,
        stale_after: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.launcher = store, launcher
        self.owner = owner or default_owner()
        self.poll_seconds, self.stale_after, self.clock = poll_seconds, stale_after, clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look now instead of at the next poll (called when a run was created)."""
        self._wake.set()

    async def step(self) -> s.RunSummary | None:
        """Claim and launch one run; the run, or None when none was waiting."""
        now = self.clock()
        run = await self.store.claim_run(self.owner, now, now - self.stale_after)
        if run is None:
            return None
        log.info("run %s (%s@%s): claimed by %s", run.id, run.repository, run.commit_sha[:12], self.owner)
        try:
            await self.launcher.launch(run)
        except Exception as exc:  # any reason it cannot start is the run's error, not ours
            reason = str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
            log.warning("run %s cannot start: %s", run.id, reason)
            update = s.RunStatusUpdate(status=RunStatus.FAILED, error=f"cannot start the run: {reason}")
            with contextlib.suppress(ForgeError):  # closed meanwhile (cancelled): nothing to add
                await self.store.set_run_status(run.id, update, ACTOR)
        return run

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.step() is not None:
                    pass
            except Exception as error:  # the database is away: try again at the next poll
                log.warning("run starter: %s: %s", type(error).__name__, error)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
