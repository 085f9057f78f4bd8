"""What a repository-scoped token may reach: the entities that belong to a repository, and how
repository names compare (framework-free; the API applies it in :mod:`forge_core.api.scope`)."""

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


def same_repository(one: str, other: str) -> bool:
    """GitHub compares ``owner/name`` without regard to case (its names are ASCII)."""
    return one.lower() == other.lower()
