"""``forge validate`` and ``forge discover``: a repository's configuration, checked and planned."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forge_core.cli.common import fail, settings_and_plugins

if TYPE_CHECKING:
    from forge_core.domain.config import Diagnostic
    from forge_core.domain.models import SourceEvent
    from forge_core.domain.plan import DiscoveryDocument

PathArgument = Annotated[Path, typer.Argument(help="The repository (a git working copy or bare repository).")]


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(discover)


def _discover(
    path: Path, commit: str | None, branch: str | None, tag: str | None, *, working_tree: bool = False
) -> DiscoveryDocument:
    from forge_core.adapters.cue import open_evaluator
    from forge_core.adapters.git import CommitReader, WorkingTreeReader
    from forge_core.builtin.discovery import new_discovery, resolve_event
    from forge_core.domain.errors import ForgeError

    try:
        settings, host = settings_and_plugins()
        source: CommitReader | WorkingTreeReader
        if working_tree:
            source = WorkingTreeReader(path)
            event = _working_tree_event(path)
        else:
            source = CommitReader(path)
            event = resolve_event(source, source.name, commit=commit, branch=branch, tag=tag, detect=True)
        evaluator = open_evaluator(settings.cue)
        try:
            return new_discovery(host.registry, evaluator, settings.cue.cache_dir, settings.cue).discover(source, event)
        finally:
            evaluator.close()
    except ForgeError as error:
        fail(error)


def _working_tree_event(path: Path) -> SourceEvent:
    """HEAD's commit and branch where there are some (a folder need not be a repository)."""
    from forge_core.adapters.git import CommitReader, GitError
    from forge_core.domain.models import SourceEvent

    try:
        reader = CommitReader(path)
        return SourceEvent(repository=reader.name, commit=reader.resolve("HEAD"), branch=reader.current_branch())
    except GitError:
        return SourceEvent(repository=path.resolve().name, commit="0" * 40)


def validate(
    path: PathArgument = Path("."),
    commit: Annotated[
        str | None, typer.Option(help="Check this commit (default: the files on disk, uncommitted edits too).")
    ] = None,
) -> None:
    """Check .forge/repo.cue and every project.cue; print every problem as file:line."""
    from rich.console import Console

    document = _discover(path, commit, None, None, working_tree=commit is None)
    errors = [d for d in document.diagnostics if not d.file.startswith("refs/")]
    errors += _deploy_problems(document)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for diagnostic in errors:
        console.print(f"[bold red]error:[/] {diagnostic}", markup=True)
    if errors:
        console.print(f"{len(errors)} error(s) in {document.event.repository} at {document.event.commit[:12]}")
        raise typer.Exit(2)
    names = ", ".join(p.project.name for p in document.projects)
    Console(highlight=False).print(f"ok: repo.cue and {len(document.projects)} project(s) valid ({names})")


def _deploy_problems(document: DiscoveryDocument) -> list[Diagnostic]:
    """Deploy resources rendered with placeholder artifact references, to catch schema errors now."""
    from forge_core.domain.errors import ForgeError
    from forge_core.domain.rendering import KubernetesRenderer
    from forge_core.services.deploy_check import deploy_diagnostics
    from forge_core.settings import load_settings

    try:
        return deploy_diagnostics(document, KubernetesRenderer(), load_settings().render.kubernetes_version)
    except ForgeError as error:
        fail(error)


def discover(
    path: PathArgument = Path("."),
    commit: Annotated[str | None, typer.Option(help="Revision (default: the tag's commit, or HEAD).")] = None,
    branch: Annotated[str | None, typer.Option(help="Discover as a push to this branch.")] = None,
    tag: Annotated[str | None, typer.Option(help="Discover as this tag's event.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The discovery document as JSON.")] = False,
) -> None:
    """Plan a commit: phase groups, tasks and steps, artifacts, release decisions, deploy resources."""
    document = _discover(path, commit, branch, tag)
    if as_json:
        typer.echo(document.model_dump_json(indent=2))
    else:
        _print_tree(document)
    if document.diagnostics:
        raise typer.Exit(2)


def _print_tree(document: DiscoveryDocument) -> None:
    from rich.console import Console
    from rich.tree import Tree

    event = document.event
    refs = ", ".join(f"{k} {v}" for k, v in (("branch", event.branch), ("tag", event.tag)) if v) or "no ref"
    root = Tree(f"[bold]{event.repository}[/] @ {event.commit[:12]} ({refs})")
    for group in document.groups:
        node = root.add(f"[bold]group {group.group}[/]: {', '.join(p.name for p in group.phases)}")
        for task in group.tasks:
            branch = node.add(f"[cyan]{task.id}[/]" + (f" (timeout {_span(task.timeout)})" if task.timeout else ""))
            for step in task.steps:
                limit = f" (timeout {_span(step.timeout)})" if step.timeout else ""
                branch.add(f"{step.name}: [dim]{step.action}[/] {_escape(step.target)}{limit}")
    projects = root.add("[bold]projects[/]")
    for plan in document.projects:
        release = plan.release
        verdict = "[dim]no release[/]"
        if release.release:
            verdict = "[green]release[/]" + (f" {release.version}" if release.version else "")
        title = f"[cyan]{plan.project.name}[/] ({plan.project.path}): {verdict}: {_escape(release.reason)}"
        node = projects.add(title)
        for artifact in plan.artifacts:
            targets = ", ".join(f"{p.name} ({p.type})" for p in artifact.publishers) or "no publishers"
            spec = artifact.spec
            node.add(f"artifact {spec.name} [dim]{spec.type}, {spec.producer}[/] → {targets}")
        if plan.resources:
            node.add("deploy: " + ", ".join(f"{r['kind']}/{r['metadata']['name']}" for r in plan.resources))
    if document.diagnostics:
        problems = root.add("[bold red]diagnostics[/]")
        for diagnostic in document.diagnostics:
            problems.add(_escape(str(diagnostic)))
    Console(highlight=False).print(root)


def _span(delta: timedelta) -> str:
    """A timeout as written in CUE: ``1h30m``, ``90s``."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n) or "0s"


def _escape(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))
