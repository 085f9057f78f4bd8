"""The live run page's stream (server-sent events): only what changed is sent.

The run (names, plan) is read once; then each poll reads only its progress (status, error, exit
code and times of every row: :meth:`RunStore.run_progress`, no run built). The phases, tasks and
steps whose progress changed are applied to the run read before, and just their parts — the
run's status, a phase's heading, a task with its steps — go out in one ``run`` event, each marked
to replace the element of its id (htmx out-of-band swaps): a change to one task of a thousand
costs that task's HTML, on the server and in the page. When the plan itself changed (discovery
recorded it) the run is read again and the whole tree sent. ``done`` ends the stream when the run
has finished.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

from forge_core.api.ui.render import render, templates
from forge_core.services import schemas as s
from forge_core.services.store import RunStore


def digest(progress: s.RunProgress) -> str:
    """Names a progress (the page says which one it shows; the stream starts from it)."""
    return hashlib.sha256(progress.model_dump_json().encode()).hexdigest()[:32]


def progress_of(run: s.Run) -> s.RunProgress:
    """The progress a run read whole shows (what the store's ``run_progress`` says of it then)."""

    def of(part: s.RunSummary | s.Phase | s.Task | s.Step) -> s.Progress:
        return s.Progress(
            status=part.status, error=getattr(part, "error", None), exit_code=getattr(part, "exit_code", None),
            logs_s3_key=getattr(part, "logs_s3_key", None), started_at=part.started_at,
            completed_at=part.completed_at,
        )

    tasks = [task for phase in run.phases for task in phase.tasks]
    return s.RunProgress(
        run=of(run), phases={p.id: of(p) for p in run.phases}, tasks={t.id: of(t) for t in tasks},
        steps={step.id: of(step) for task in tasks for step in task.steps},
    )


async def run_events(
    runs: RunStore, run_id: UUID, since: str | None, poll: float, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    shown = await runs.run_progress(run_id)
    run = await runs.get_run(run_id)  # as new as ``shown`` or newer: later changes are sent again
    if digest(shown) != since:  # it changed between the page and the stream: all of it again
        yield event("run", render("run_tree.html", run=run, oob=True))
    while run.status not in s.FINAL_STATUSES:
        await asyncio.sleep(poll)
        if await disconnected():
            return
        now = await runs.run_progress(run_id)
        if now == shown:
            continue
        if now.phases.keys() != shown.phases.keys() or now.tasks.keys() != shown.tasks.keys() \
                or now.steps.keys() != shown.steps.keys():
            run = await runs.get_run(run_id)  # a new plan
            yield event("run", render("run_tree.html", run=run, oob=True))
        else:
            run = _applied(run, now)
            yield event("run", "".join(_out_of_band(part) for part in _changed_parts(run, shown, now)))
        shown = now
    yield event("done", run.status.value)


def _applied(run: s.Run, progress: s.RunProgress) -> s.Run:
    def fields(p: s.Progress, *names: str) -> dict[str, Any]:
        return {name: getattr(p, name) for name in ("status", "started_at", "completed_at", *names)}

    phases = [
        phase.model_copy(update={**fields(progress.phases[phase.id]), "tasks": tuple(
            task.model_copy(update={**fields(progress.tasks[task.id], "error"), "steps": tuple(
                step.model_copy(update=fields(progress.steps[step.id], "exit_code", "logs_s3_key"))
                for step in task.steps
            )})
            for task in phase.tasks
        )})
        for phase in run.phases
    ]
    return run.model_copy(update={**fields(progress.run, "error"), "phases": phases})


def _changed_parts(run: s.Run, before: s.RunProgress, now: s.RunProgress) -> list[str]:
    macros: Any = templates.get_template("run_parts.html").module
    parts = [str(macros.status(run))] if now.run != before.run else []
    for phase in run.phases:
        if now.phases[phase.id] != before.phases[phase.id]:
            parts.append(str(macros.phase_head(phase)))
        for task in phase.tasks:
            moved = now.tasks[task.id] != before.tasks[task.id] or any(
                now.steps[step.id] != before.steps[step.id] for step in task.steps
            )
            if moved:
                parts.append(str(macros.task(run, task)))
    return [part.strip() for part in parts]


def _out_of_band(part: str) -> str:
    """The part marked to replace the element of its id: the attribute goes into its opening tag
    (whose first ``>`` ends it: autoescaping writes any other as ``&gt;``)."""
    end = part.index(">")
    return f'{part[:end]} hx-swap-oob="true"{part[end:]}'


def event(name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"
