"""A step's log, read a page of bytes at a time: what ``forge logs`` copies to its output.

A page is the stored bytes from ``offset`` (at most ``limit``), exactly as stored (secrets were
masked when the log was written), so a reader that asks again from ``X-Forge-Log-Next-Offset``
gets the rest; neither side ever holds more than one page, whatever the log's size. While the
step runs its log grows: ``X-Forge-Log-Size`` (the stored size when the page was read) and
``X-Forge-Step-Status`` (read before it) tell a follower whether to wait for more, and a log whose
step has ended is complete once the reader reaches its size.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from forge_core.adapters.storage import FsspecStore
from forge_core.api.deps import App, Reader, Runs
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.services import schemas as s
from forge_core.services.errors import NotFound

router = APIRouter(prefix="/v1", tags=["runs"], responses=ERROR_RESPONSES)

PAGE_BYTES = 1024 * 1024
"""A page's default size: ``forge logs`` holds one at a time."""
MAX_PAGE_BYTES = 8 * 1024 * 1024

STEP_STATUS = "X-Forge-Step-Status"
LOG_SIZE = "X-Forge-Log-Size"
NEXT_OFFSET = "X-Forge-Log-Next-Offset"
NO_LOG = "X-Forge-No-Log"

_HEADERS = {
    STEP_STATUS: {"description": "The step's status when the page was read", "schema": {"type": "string"}},
    LOG_SIZE: {"description": "The stored log's size in bytes when the page was read",
               "schema": {"type": "integer"}},
    NEXT_OFFSET: {"description": "Where the next page starts", "schema": {"type": "integer"}},
    NO_LOG: {"description": "Set (to why) when the step ended without a log", "schema": {"type": "string"}},
}


@router.get(
    "/runs/{run_id}/steps/{step_id}/log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "headers": _HEADERS,
                     "description": "The log's bytes from offset (empty at its end)"}},
)
async def step_log(
    run_id: UUID,
    step_id: UUID,
    app: App,
    runs: Runs,
    who: Reader,
    offset: Annotated[int, Query(ge=0, le=2**50, description="First byte of the page")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_BYTES, description="Most bytes in the page")] = PAGE_BYTES,
) -> Response:
    """One page of a step's stored log (bytes from ``offset``); see the headers for where the next
    page starts and whether the step may still add to it. A step that has not started yet has an
    empty log so far; one that ended without running (skipped, cancelled before it started) has an
    empty one, and ``X-Forge-No-Log`` says so."""
    step = await runs.run_step(run_id, step_id)
    if step is None:
        raise NotFound(f"run {run_id} has no step {step_id}", where="step_id")
    final = step.status in s.FINAL_STATUSES
    data, size = b"", 0  # a step that has not started (or not yet named its log): nothing so far
    if step.logs_s3_key is not None:
        store = FsspecStore.from_settings(app.settings.storage)
        try:
            data, size = await asyncio.to_thread(store.read_range, step.logs_s3_key, offset, limit)
        except FileNotFoundError:
            if final:
                raise NotFound("the step's log is missing from the storage", where="step_id") from None
    headers = {STEP_STATUS: step.status.value, LOG_SIZE: str(size), NEXT_OFFSET: str(offset + len(data))}
    if step.logs_s3_key is None and final:
        headers[NO_LOG] = "the step did not run"
    return Response(data, media_type="text/plain; charset=utf-8", headers=headers)
