"""How a run looks in the terminal: its phase groups, tasks and steps, with status and duration."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from forge_core.services.schemas import Run, RunSummary

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


def run_tree(run: Run) -> RenderableType:
    """The run as a tree: groups → phases' tasks → steps."""
    title = Text.assemble(
        ("run ", "bold"), (str(run.id), "bold"), "  ", badge(run.status.value), "  ",
        (f"{run.repository} @ {run.commit_sha[:12]}", "dim"),
        (f"  {duration(run.started_at, run.completed_at)}", "dim"),
    )
    tree = Tree(title)
    for number in sorted({p.group_number for p in run.phases}):
        phases = [p for p in run.phases if p.group_number == number]
        group = tree.add(Text(f"group {number}: " + ", ".join(p.name for p in phases), style="bold"))
        for phase in phases:
            for task in phase.tasks:
                line = Text.assemble(
                    badge(task.status.value), f"  {task.key}",
                    (f"  {duration(task.started_at, task.completed_at)}", "dim"),
                )
                if task.error and task.status.value == "failed":
                    line.append(f"  {task.error}", style="red")
                if task.status.value == "failed" and not phase.required:
                    line.append(f"  (phase {phase.name} is not required: the run goes on)", style="yellow")
                node = group.add(line)
                for step in task.steps:
                    exit_code = f"  exit {step.exit_code}" if step.exit_code is not None else ""
                    node.add(Text.assemble(
                        badge(step.status.value), f"  {step.name}: {step.action} {step.target}",
                        (f"{exit_code}  {duration(step.started_at, step.completed_at)}", "dim"),
                    ))
    if run.artifact_records:
        stage = tree.add(Text("artifacts", style="bold"))
        for record in run.artifact_records:
            line = Text.assemble(badge(record.status.value), f"  {record.project}/{record.artifact}",
                                 (f"  {record.type}", "dim"))
            if record.error and record.status.value == "failed":
                line.append(f"  {record.error}", style="red")
            node = stage.add(line)
            for target in record.targets:
                style = "red" if target.outcome.value == "failed" else "dim"
                node.add(Text.assemble(f"{target.outcome.value}  {target.publisher}",
                                       (f"  {target.uri or target.note or target.error or ''}", style)))
    notes = []
    if run.error:
        notes.append(Text(run.error, style="red"))
    tolerated = [p.name for p in run.phases if p.status.value == "failed" and not p.required]
    if tolerated:
        notes.append(Text(f"failed but not required (the run went on): {', '.join(tolerated)}", style="yellow"))
    return Group(tree, *notes) if notes else tree


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
