"""What a repository-scoped token may reach: the entities that belong to a repository
(framework-free; the API applies the scope in :mod:`forge_core.api.scope`)."""

from __future__ import annotations

from enum import StrEnum


class Owned(StrEnum):
    """An entity that belongs to one repository: a run's own, or its release's."""

    RUN = "pipeline run"
    PHASE = "phase"
    TASK = "task"
    STEP = "step"
    RELEASE = "release"
    APPROVAL = "approval"
    DEPLOYMENT = "deployment"

