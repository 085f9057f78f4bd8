"""Pure rules of the use cases, applied by the store inside its transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forge_core.domain.models import RunStatus
from forge_core.services.errors import Conflict
from forge_core.services.schemas import FINAL_STATUSES

COMMIT_STATUS_KIND = "commit_status"
GITHUB_STATES = {
    RunStatus.PENDING: "pending",
    RunStatus.RUNNING: "pending",
    RunStatus.SUCCESS: "success",
    RunStatus.FAILED: "failure",
    RunStatus.CANCELLED: "error",
    RunStatus.SKIPPED: "error",
}
DESCRIPTIONS = {
    RunStatus.PENDING: "Pipeline queued",
    RunStatus.RUNNING: "Pipeline running",
    RunStatus.SUCCESS: "Pipeline succeeded",
    RunStatus.FAILED: "Pipeline failed",
    RunStatus.CANCELLED: "Pipeline cancelled",
    RunStatus.SKIPPED: "Pipeline skipped",
}


@dataclass(frozen=True)
class Transition:
    """A status change and the timestamps it sets (``None``: leave as is)."""

    changed: bool
    started_at: datetime | None = None
    completed_at: datetime | None = None


def transition(
    what: str, entity_id: object, current: str, new: RunStatus, now: datetime
) -> Transition:
    """Check a status change: a final status is final; repeating the current one is a no-op."""
    current_status = RunStatus(current)
    if current_status == new:
        return Transition(False)
    if current_status in FINAL_STATUSES:
        raise Conflict(
            f"{what} {entity_id} is already {current_status.value}; it cannot become {new.value}",
            where=f"{what}.status",
            details={"id": str(entity_id), "status": current_status.value},
        )
    return Transition(
        True,
        started_at=now if new == RunStatus.RUNNING else None,
        completed_at=now if new in FINAL_STATUSES else None,
    )


def commit_status_key(repository: str, commit_sha: str) -> str:
    """Messages with one key are delivered in order; a commit's statuses share one."""
    return f"{repository}@{commit_sha}"


def commit_status_payload(
    run_id: object, repository: str, commit_sha: str, status: RunStatus
) -> dict[str, Any]:
    return {
        "run_id": str(run_id),
        "repository": repository,
        "commit_sha": commit_sha,
        "run_status": status.value,
        "state": GITHUB_STATES[status],
        "description": DESCRIPTIONS[status],
    }
