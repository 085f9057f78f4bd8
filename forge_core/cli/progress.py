"""How a run looks in the terminal: its phase groups, tasks and steps, its artifacts, and — while
`forge run` makes them — each project's release and deployment, with status and duration.

:func:`run_tree` draws a run read whole. :class:`RunView` is the live one: built once from the run,
then kept up to date from its changes (``GET /v1/runs/{id}/progress?since=``), each change
redrawing only its own node, so a refresh costs what changed, not the size of the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from forge_core.services.schemas import ArtifactRecord, Phase, Progress, Run, RunChanges, RunSummary, Step, Task

if TYPE_CHECKING:
    from forge_core.cli.stages import StagesReport

STYLES = {
    "pending": ("·", "dim"),
    "running": ("▶", "bold cyan"),
    "success": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("⊘", "yellow"),
    "skipped": ("-", "dim"),
}


def badge(status: str) -> Text:
    symbol, style = STYLES.get(status, ("?", ""))
    return Text(f"{symbol} {status}", style=style)


def duration(started: datetime | None, completed: datetime | None) -> str:
    if started is None:
        return ""
    end = _aware(completed) if completed else datetime.now(UTC)
    seconds = max(0.0, (end - _aware(started)).total_seconds())
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_tree(run: Run, stages: StagesReport | None = None) -> RenderableType:
    """The run as a tree: groups → phases' tasks → steps, then artifacts, releases, deployments."""
    return RunView(run, stages).renderable()


def _title(run: RunSummary) -> Text:
    return Text.assemble(
        ("run ", "bold"), (str(run.id), "bold"), "  ", badge(run.status.value), "  ",
        (f"{run.repository} @ {run.commit_sha[:12]}", "dim"),
        (f"  {duration(run.started_at, run.completed_at)}", "dim"),
    )


def _task_line(task: Task, phase: Phase) -> Text:
    line = Text.assemble(
        badge(task.status.value), f"  {task.key}", (f"  {duration(task.started_at, task.completed_at)}", "dim"),
    )
    if task.error and task.status.value == "failed":
        line.append(f"  {task.error}", style="red")
    if task.status.value == "failed" and not phase.required:
        line.append(f"  (phase {phase.name} is not required: the run goes on)", style="yellow")
    return line


def _step_line(step: Step) -> Text:
    exit_code = f"  exit {step.exit_code}" if step.exit_code is not None else ""
    return Text.assemble(
        badge(step.status.value), f"  {step.name}: {step.action} {step.target}",
        (f"{exit_code}  {duration(step.started_at, step.completed_at)}", "dim"),
    )


def _record_node(record: ArtifactRecord) -> Tree:
    line = Text.assemble(badge(record.status.value), f"  {record.project}/{record.artifact}",
                         (f"  {record.type}", "dim"))
    if record.error and record.status.value == "failed":
        line.append(f"  {record.error}", style="red")
    node = Tree(line)
    for target in record.targets:
        style = "red" if target.outcome.value == "failed" else "dim"
        node.add(Text.assemble(f"{target.outcome.value}  {target.publisher}",
                               (f"  {target.uri or target.note or target.error or ''}", style)))
    return node


DEPLOYMENT_STYLES = {"pending": ("·", "dim"), "active": ("✓", "green"), "failed": ("✗", "bold red")}


def _stage_line(status: str, name: str, detail: str) -> Text:
    symbol, style = DEPLOYMENT_STYLES.get(status) or STYLES.get(status, ("?", ""))
    return Text.assemble(Text(f"{symbol} {status}", style=style), f"  {name}", (f"  {detail}", "dim"))


def _updated(part: Phase | Task | Step, progress: Progress, *names: str) -> Phase | Task | Step:
    fields = {name: getattr(progress, name) for name in ("status", "started_at", "completed_at", *names)}
    return part.model_copy(update=fields)


class RunView:
    """A run's tree, kept up to date from its changes.

    Each task, step and artifact record has its node; :meth:`apply` changes only the nodes the
    changes name (and the title), and the release and deployment stages are redrawn only when
    ``stages`` changed. ``cursor`` is where to ask for the next changes from.
    """

    def __init__(self, run: Run, stages: StagesReport | None = None) -> None:
        self.run, self.stages = run, stages
        self.cursor = 0
        self.redrawn = 0
        """How many nodes were (re)drawn since the view was built (what a refresh cost)."""
        self._tree = Tree(_title(run))
        self._phases = {phase.id: phase for phase in run.phases}
        self._tasks: dict[str, tuple[Task, Phase, Tree]] = {}
        self._steps: dict[str, tuple[Step, Tree]] = {}
        for number in sorted({p.group_number for p in run.phases}):
            phases = [p for p in run.phases if p.group_number == number]
            group = self._tree.add(Text(f"group {number}: " + ", ".join(p.name for p in phases), style="bold"))
            for phase in phases:
                for task in phase.tasks:
                    node = group.add(_task_line(task, phase))
                    self._tasks[task.id] = (task, phase, node)
                    for step in task.steps:
                        self._steps[step.id] = (step, node.add(_step_line(step)))
        self._records: dict[tuple[str, str], Tree] = {}
        self._artifacts: Tree | None = None
        self._add_records(run.artifact_records)
        self._releases: Tree | None = None
        self._deployments: Tree | None = None
        self._stages_seen = -1
        self._draw_stages()

    def knows(self, changes: RunChanges) -> bool:
        """Whether every phase, task and step the changes name is in this view (else the plan was
        recorded after it was built: build it again from the run)."""
        return (changes.phases.keys() <= self._phases.keys() and changes.tasks.keys() <= self._tasks.keys()
                and changes.steps.keys() <= self._steps.keys())

    def apply(self, changes: RunChanges) -> None:
        """Bring the view to ``changes`` (call :meth:`knows` first)."""
        run = self.run
        self.run = run.model_copy(update={
            "status": changes.run.status, "error": changes.run.error, "started_at": changes.run.started_at,
            "completed_at": changes.run.completed_at,
        })
        self._tree.label = _title(self.run)
        for phase_id, progress in changes.phases.items():
            phase = self._phases[phase_id]
            self._phases[phase_id] = _updated(phase, progress)  # type: ignore[assignment]
        for task_id, progress in changes.tasks.items():
            task, phase, node = self._tasks[task_id]
            task = _updated(task, progress, "error")  # type: ignore[assignment]
            self._tasks[task_id] = (task, phase, node)
            node.label = _task_line(task, phase)
            self.redrawn += 1
        for step_id, progress in changes.steps.items():
            step, node = self._steps[step_id]
            step = _updated(step, progress, "exit_code", "logs_s3_key")  # type: ignore[assignment]
            self._steps[step_id] = (step, node)
            node.label = _step_line(step)
            self.redrawn += 1
        self._add_records(changes.artifact_records)
        self.cursor = max(self.cursor, changes.cursor)
        self._draw_stages()

    def _add_records(self, records: Iterable[ArtifactRecord]) -> None:
        for record in records:
            if self._artifacts is None:
                self._artifacts = self._tree.add(Text("artifacts", style="bold"))
            key = (record.project, record.artifact)
            fresh = _record_node(record)
            if key in self._records:  # the same node object stays in its place, redrawn
                node = self._records[key]
                node.label, node.children = fresh.label, fresh.children
            else:
                self._records[key] = fresh
                self._artifacts.children.append(fresh)
            self.redrawn += 1

    def _draw_stages(self) -> None:
        stages = self.stages
        if stages is None or stages.changes == self._stages_seen:
            return
        self._stages_seen = stages.changes
        if stages.release_nodes:
            if self._releases is None:
                self._releases = self._tree.add(Text("releases", style="bold"))
            self._releases.children = [
                Tree(_stage_line(node.status, project, node.detail)) for project, node in stages.release_nodes.items()
            ]
            self.redrawn += len(stages.release_nodes)
        if stages.deployment_nodes:
            if self._deployments is None:
                self._deployments = self._tree.add(Text("deployments", style="bold"))
            children = []
            for environment, nodes in stages.deployment_nodes.items():
                env = Tree(Text(environment, style="bold"))
                env.children = [Tree(_stage_line(n.status, project, n.detail)) for project, n in nodes.items()]
                children.append(env)
                self.redrawn += len(nodes)
            self._deployments.children = children

    def renderable(self) -> RenderableType:
        notes = []
        if self.run.error:
            notes.append(Text(self.run.error, style="red"))
        tolerated = [p.name for p in self._phases.values() if p.status.value == "failed" and not p.required]
        if tolerated:
            notes.append(Text(f"failed but not required (the run went on): {', '.join(tolerated)}", style="yellow"))
        return Group(self._tree, *notes) if notes else self._tree


def runs_table(runs: list[RunSummary]) -> Table:
    table = Table(title="Pipeline runs")
    for column in ("run", "repository", "commit", "ref", "status", "started", "duration"):
        table.add_column(column)
    for run in runs:
        ref = run.tag or run.branch or ""
        started = run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else ""
        table.add_row(
            str(run.id), run.repository, run.commit_sha[:12], ref, badge(run.status.value), started,
            duration(run.started_at, run.completed_at),
        )
    return table
