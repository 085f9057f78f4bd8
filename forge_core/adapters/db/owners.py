"""Which repository an entity belongs to: one indexed lookup along its foreign keys."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase
from forge_core.services.scope import Owned

_RUN = select(m.PipelineRun.repository)
_PHASE = _RUN.join(m.PhaseExecution, m.PhaseExecution.pipeline_run_id == m.PipelineRun.id)
_TASK = _PHASE.join(m.TaskExecution, m.TaskExecution.phase_execution_id == m.PhaseExecution.id)
_STEP = _TASK.join(m.StepExecution, m.StepExecution.task_execution_id == m.TaskExecution.id)
_RELEASE = select(m.Release.repository)
_APPROVAL = _RELEASE.join(m.ReleaseApproval, m.ReleaseApproval.release_id == m.Release.id)
_DEPLOYMENT = select(m.Deployment.repository)

# Each kind: the query from the entity up to the row that holds the repository, and its id column.
_LOOKUPS: dict[Owned, tuple[Select[Any], Any]] = {
    Owned.RUN: (_RUN, m.PipelineRun.id),
    Owned.PHASE: (_PHASE, m.PhaseExecution.id),
    Owned.TASK: (_TASK, m.TaskExecution.id),
    Owned.STEP: (_STEP, m.StepExecution.id),
    Owned.RELEASE: (_RELEASE, m.Release.id),
    Owned.APPROVAL: (_APPROVAL, m.ReleaseApproval.id),
    Owned.DEPLOYMENT: (_DEPLOYMENT, m.Deployment.id),
}


class SqlOwners(SqlDatabase):
    """Implements :class:`forge_core.services.store.OwnerStore`."""

    async def repository_of(self, kind: Owned, entity_id: uuid.UUID) -> str | None:
        query, column = _LOOKUPS[kind]
        async with self.sessions() as session:
            found: str | None = await session.scalar(query.where(column == entity_id))
            return found
