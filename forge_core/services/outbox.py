"""The outbox sender: delivers commit statuses written with run state changes.

Runs beside the API (or as ``forge notifier``). Messages of one key (one commit) go out in the
order they were written: a message waits until every earlier one of its key was delivered, so a
failure holds back that commit only. A failed delivery is retried with exponential backoff, for as
long as it takes; nothing is dropped while the receiver is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.models import CommitStatus
from forge_core.plugin.family import Family
from forge_core.plugin.registry import Registry
from forge_core.ports.protocols import Notifier, NotifierOptions
from forge_core.services import rules
from forge_core.services import schemas as s
from forge_core.services.store import OutboxStore
from forge_core.settings.api import NotifierSettings

log = logging.getLogger("forge.outbox")


@dataclass(frozen=True)
class SenderConfig:
    context: str = "catalyst-forge"
    target_url: str | None = None
    poll_seconds: float = 1.0
    base_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    batch: int = 50
    keep_delivered: timedelta = timedelta(days=7)
    purge_every_seconds: float = 600.0


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: about base·2^attempts, at most ``cap`` seconds."""
    return float(min(cap, base * 2 ** min(attempts, 30)) * random.uniform(0.5, 1.0))


class OutboxSender:
    def __init__(
        self,
        store: OutboxStore,
        notifier: Notifier,
        options: NotifierOptions,
        config: SenderConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.notifier, self.options = store, notifier, options
        self.config, self.clock = config, clock
        self._wake = asyncio.Event()
        self._purged_at: float | None = None

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll (called after a state change)."""
        self._wake.set()

    def commit_status(self, message: s.OutboxMessage) -> CommitStatus:
        payload = message.payload
        link = self.config.target_url
        return CommitStatus(
            repository=payload["repository"],
            commit_sha=payload["commit_sha"],
            state=payload["state"],
            context=self.config.context,
            description=payload["description"],
            target_url=link.replace("{run_id}", payload["run_id"]) if link else None,
            run_id=payload["run_id"],
        )

    async def deliver_due(self) -> int:
        """Send every message that is due now, each commit's in order; returns how many went out."""
        sent = 0
        while True:
            batch = await self.store.claim_outbox(self.clock(), self.config.batch)
            if not batch:
                return sent
            results = await asyncio.gather(*(self._deliver(message) for message in batch))
            sent += sum(results)
            if not any(results):
                return sent

    async def _deliver(self, message: s.OutboxMessage) -> bool:
        try:
            if message.kind != rules.COMMIT_STATUS_KIND:
                raise ValueError(f"unknown outbox message kind {message.kind!r}")
            # Notifiers are synchronous plugin code; keep them off the event loop.
            status = self.commit_status(message)
            await asyncio.to_thread(self.notifier.send_commit_status, status, self.options)
        except Exception as exc:  # any failure of plugin code is retried later
            base, cap = self.config.base_backoff_seconds, self.config.max_backoff_seconds
            delay = backoff(message.attempts, base, cap)
            retry_at = self.clock() + timedelta(seconds=delay)
            await self.store.outbox_failed(message.id, f"{type(exc).__name__}: {exc}", retry_at)
            log.warning(
                "commit status delivery failed",
                extra={"outbox_id": message.id, "retry_in": round(delay, 1)},
            )
            return False
        await self.store.outbox_delivered(message.id, self.clock())
        return True

    async def purge(self) -> int:
        """Delete the messages delivered longer ago than ``keep_delivered``, in batches."""
        before, purged = self.clock() - self.config.keep_delivered, 0
        while (count := await self.store.purge_delivered(before, 1000)) > 0:
            purged += count
        if purged:
            log.info("purged delivered commit statuses", extra={"purged": purged})
        return purged

    async def _purge_when_due(self) -> None:
        now = time.monotonic()
        if self._purged_at is None or now - self._purged_at >= self.config.purge_every_seconds:
            self._purged_at = now
            await self.purge()

    async def run_forever(self) -> None:
        while True:
            try:
                async with self.store.outbox_turn() as mine:
                    if mine:
                        await self.deliver_due()
                        await self._purge_when_due()
            except Exception:  # a database hiccup must not end the sender
                log.exception("outbox sender pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_seconds)
            self._wake.clear()


def sender_from_settings(
    settings: NotifierSettings, registry: Registry, store: OutboxStore
) -> OutboxSender | None:
    """The sender for the configured notifier plugin, or None when none is configured."""
    if settings.type is None:
        return None
    try:
        notifier: Notifier = registry.create(Family.NOTIFIER, settings.type)
    except ForgeError as exc:
        raise ConfigurationError(exc.message, where="FORGE_API__NOTIFIER__TYPE") from None
    token = settings.token.get_secret_value() if settings.token else None
    return OutboxSender(
        store,
        notifier,
        NotifierOptions(options=settings.options, token=token),
        SenderConfig(
            context=settings.context,
            target_url=settings.target_url,
            poll_seconds=settings.poll_seconds,
            base_backoff_seconds=settings.min_backoff_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            keep_delivered=timedelta(days=settings.keep_delivered_days),
        ),
    )
