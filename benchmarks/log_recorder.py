"""A RunRecorder that writes run state as log lines: the dispatch benchmark measures the bus
round trip, so its worker reports nowhere slower than a log line."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("forge.runs")


class LogRecorder:
    """Each state change is one log line; a plan is returned unchanged (its ids are the caller's)."""

    async def record_plan(self, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
        log.info("run %s: plan with %d phase(s)", run_id, len(plan.get("phases", [])))
        return plan

    async def set_run_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        log.info("run %s: %s%s", run_id, status, f" ({error})" if error else "")

    async def set_phase_status(self, phase_id: str, status: str) -> None:
        log.info("phase %s: %s", phase_id, status)

    async def set_task_status(self, task_id: str, status: str, *, error: str | None = None) -> None:
        log.info("task %s: %s%s", task_id, status, f" ({error})" if error else "")

    async def set_step_status(
        self, step_id: str, status: str, *, exit_code: int | None = None, logs_key: str | None = None
    ) -> None:
        log.info("step %s: %s%s", step_id, status, f" (exit {exit_code}, log {logs_key})" if logs_key else "")
