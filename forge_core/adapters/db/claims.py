"""Run claims: a new run is taken by exactly one run starter, however many API replicas look.

The claim is one conditional UPDATE (``claimed_by IS NULL``, or a claim older than the stale limit
on a run still pending): of two starters racing for a run only one sees its row changed, on
PostgreSQL and SQLite alike. A starter that died after claiming leaves a pending run whose claim
goes stale and is taken again; a starter that handed the run over moved it out of ``pending``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase
from forge_core.domain.models import RunStatus
from forge_core.services import schemas as s


class SqlRunClaims(SqlDatabase):
    """Implements :class:`forge_core.services.store.RunClaimStore`."""

    async def claim_run(
        self, owner: str, now: datetime, stale_before: datetime, limit: int = 10
    ) -> s.RunSummary | None:
        run = m.PipelineRun
        claimable = (run.status == RunStatus.PENDING.value) & or_(
            run.claimed_by.is_(None), run.claimed_at < stale_before
        )
        candidates = select(run.id).where(claimable).order_by(run.created_at).limit(limit)
        async with self.sessions() as session:
            ids = list((await session.execute(candidates)).scalars())
        for run_id in ids:
            async with self.transaction() as session:
                taken = await session.execute(
                    update(run).where(run.id == run_id, claimable).values(claimed_by=owner, claimed_at=now)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    row = await session.get_one(run, run_id)
                    return s.RunSummary.model_validate(row)
        return None
