"""The live run page's stream (server-sent events): only what changed is sent.

Each poll asks the store for the run's state digest (cheap: no run is built). When it changed,
the run is read and its parts rendered (the status, each phase's heading, each task with its
steps); the parts that differ from the last ones sent go out in one ``run`` event, each marked
to replace the element of its id (htmx out-of-band swaps), so a change to one task of a
thousand costs that task's HTML in the page. When the plan itself changed (discovery recorded
it), the whole tree is sent. ``done`` ends the stream when the run has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

from forge_core.api.ui.render import render, templates
from forge_core.services import schemas as s
from forge_core.services.store import RunStore


def _parts(run: s.Run) -> dict[str, str]:
    macros: Any = templates.get_template("run_parts.html").module
    found = {"run-status": str(macros.status(run)).strip()}
    for phase in run.phases:
        found[f"phase-{phase.id}"] = str(macros.phase_head(phase)).strip()
        for task in phase.tasks:
            found[f"task-{task.id}"] = str(macros.task(run, task)).strip()
    return found


def _out_of_band(part: str) -> str:
    """The part marked to replace the element of its id: the attribute goes into its opening tag
    (whose first ``>`` ends it: autoescaping writes any other as ``&gt;``)."""
    end = part.index(">")
    return f'{part[:end]} hx-swap-oob="true"{part[end:]}'


async def run_events(
    runs: RunStore, run_id: UUID, since: str | None, poll: float, disconnected: Callable[[], Any]
) -> AsyncIterator[str]:
    state, sent = since, None  # sent: the parts last sent; unknown until the first change
    while not await disconnected():
        now = await runs.run_state(run_id)
        if now != state:
            state = now
            run = await runs.get_run(run_id)
            parts = _parts(run)
            if sent is None or parts.keys() != sent.keys():
                yield event("run", render("run_tree.html", run=run, oob=True))
            else:
                yield event("run", "".join(_out_of_band(html) for key, html in parts.items() if sent[key] != html))
            sent = parts
            if run.status in s.FINAL_STATUSES:
                yield event("done", run.status.value)
                return
        await asyncio.sleep(poll)


def event(name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"
