"""The outbox: commit statuses written in the transaction of a run's change, delivered later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase
from forge_core.domain.models import RunStatus
from forge_core.services import rules
from forge_core.services import schemas as s

OUTBOX_LOCK = 0x466F726765  # "Forge": the advisory lock of the outbox sender


class SqlOutbox(SqlDatabase):
    """Implements :class:`forge_core.services.store.OutboxStore`."""

    @asynccontextmanager
    async def outbox_turn(self) -> AsyncIterator[bool]:
        """True for one sender at a time (a PostgreSQL advisory lock), so that API replicas and
        ``forge notifier`` never send one commit's statuses side by side; SQLite has one process."""
        if self.dialect != "postgresql":
            yield True
            return
        async with self.engine.connect() as connection:
            lock = text("SELECT pg_try_advisory_lock(:key)").bindparams(key=OUTBOX_LOCK)
            acquired = bool(await connection.scalar(lock))
            await connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    unlock = text("SELECT pg_advisory_unlock(:key)").bindparams(key=OUTBOX_LOCK)
                    await connection.scalar(unlock)
                    await connection.commit()

    async def claim_outbox(self, now: datetime, limit: int) -> list[s.OutboxMessage]:
        outbox = m.OutboxMessage
        earlier = outbox.__table__.alias("earlier")
        waits_for_earlier = (
            select(earlier.c.id)
            .where(
                earlier.c.key == outbox.key,
                earlier.c.delivered_at.is_(None),
                earlier.c.id < outbox.id,
            )
            .exists()
        )
        query = (
            select(outbox)
            .where(outbox.delivered_at.is_(None), outbox.next_attempt_at <= now, ~waits_for_earlier)
            .order_by(outbox.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).scalars().all()
            return [s.OutboxMessage.model_validate(r) for r in rows]

    async def outbox_delivered(self, message_id: int, now: datetime) -> None:
        await self._outbox_attempt(message_id, delivered_at=now, last_error=None)

    async def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        await self._outbox_attempt(message_id, next_attempt_at=retry_at, last_error=error[:2000])

    async def _outbox_attempt(self, message_id: int, **values: Any) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.id == message_id)
                .values(attempts=m.OutboxMessage.attempts + 1, **values)
            )

    async def purge_delivered(self, before: datetime, limit: int) -> int:
        outbox = m.OutboxMessage
        oldest = (
            select(outbox.id)
            .where(outbox.delivered_at.is_not(None), outbox.delivered_at < before)
            .order_by(outbox.id)
            .limit(limit)
        )
        async with self.transaction() as session:
            ids = list((await session.execute(oldest)).scalars())
            if ids:
                await session.execute(delete(outbox).where(outbox.id.in_(ids)))
            return len(ids)

    async def outbox_pending(self) -> int:
        query = (
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.delivered_at.is_(None))
        )
        async with self.sessions() as session:
            return int(await session.scalar(query) or 0)


# --- written by the run aggregate --------------------------------------------------------------


def commit_status(session: AsyncSession, run: m.PipelineRun) -> None:
    status = RunStatus(run.status)
    session.add(
        m.OutboxMessage(
            key=rules.commit_status_key(run.repository, run.commit_sha),
            kind=rules.COMMIT_STATUS_KIND,
            payload=rules.commit_status_payload(run.id, run.repository, run.commit_sha, status),
            created_at=m.utcnow(),
            next_attempt_at=m.utcnow(),
            attempts=0,
        )
    )
