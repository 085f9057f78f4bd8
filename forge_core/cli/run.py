"""``forge run``, ``forge runs`` and ``forge logs``: the main job, and reading its history back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from forge_core.cli.common import fail, settings_and_plugins

if TYPE_CHECKING:
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.ports.storage import ObjectStore

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("logs")(logs)
    app.command("cancel")(cancel)


def run(
    path: Annotated[Path, typer.Argument(help="The repository (a git working tree).")] = Path("."),
    commit: Annotated[str | None, typer.Option(help="Revision to run (default: HEAD).")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch the commit is on (default: HEAD's).")] = None,
    tag: Annotated[str | None, typer.Option(help="Tag of the commit (default: one pointing at it).")] = None,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Tasks run at once.")] = 4,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish the artifacts (default: every publisher only plans).")
    ] = False,
    ui: Annotated[bool, typer.Option("--ui", help="Serve the web console beside the run, print its page.")] = False,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="Re-run the commit's finished run as its next attempt: the tasks that did not succeed.",
    )] = False,
    rerun_all: Annotated[bool, typer.Option("--all", help="With --rerun: every task.")] = False,
) -> None:
    """Run the whole pipeline for one commit on this machine: discovery, the phase groups, then the
    artifacts of the releasing projects (planned, or published with --publish). A commit has one
    run; --rerun re-runs it as a new attempt, keeping every earlier attempt's history."""
    import asyncio
    import signal

    from rich.console import Console

    from forge_core.domain.errors import ConfigurationError, ForgeError

    console = Console(highlight=False)
    # A service manager's stop (SIGTERM) is a Ctrl-C: the run is cancelled and recorded, never
    # left running; whichever SIGINT handling is in force at that moment applies.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: signal.raise_signal(signal.SIGINT))
    try:
        if rerun_all and not rerun:
            raise ConfigurationError("--all goes with --rerun (re-run every task of the commit's run)", where="--all")
        settings, host = settings_and_plugins()
        from forge_core.cli.pipeline import Rerun, locate, run_pipeline

        source = locate(path, commit=commit, branch=branch, tag=tag)
        again = Rerun(only_failed=not rerun_all) if rerun else None
        if ui:
            from forge_core.cli.console_serving import run_with_console

            code = asyncio.run(run_with_console(settings, host, source, console, parallel, publish=publish,
                                                rerun=again))
        else:
            code = asyncio.run(run_pipeline(settings, host, source, console, parallel=parallel, publish=publish,
                                            rerun=again))
    except ForgeError as error:
        fail(error)
    raise typer.Exit(code)


def runs(
    repository: Annotated[str | None, typer.Option(help="Only this repository (owner/name).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List pipeline runs, newest first."""
    from forge_core.domain.errors import ForgeError

    try:
        listing = _with_client(lambda client: client.list_runs(repository=repository, limit=limit))
    except ForgeError as error:
        fail(error)
    if as_json:
        typer.echo(listing.model_dump_json(indent=2))
        return
    from rich.console import Console

    from forge_core.cli.progress import runs_table

    Console().print(runs_table(listing.runs))


def logs(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run's id.")],
    task: Annotated[str | None, typer.Option(help="Only this task (its key, e.g. api/test, or id).")] = None,
) -> None:
    """Print the logs of a run's steps (of one task with --task)."""
    from forge_core.adapters.storage import FsspecStore
    from forge_core.domain.errors import ConfigurationError, ForgeError
    from forge_core.settings import load_settings

    try:
        found = _with_client(lambda client: client.get_run(run_id))
        tasks = [t for phase in found.phases for t in phase.tasks]
        if task is not None:
            tasks = [t for t in tasks if task in (t.key, str(t.id))]
            if not tasks:
                keys = ", ".join(t.key for phase in found.phases for t in phase.tasks)
                raise ConfigurationError(f"run {run_id} has no task {task!r}; its tasks: {keys}", where="--task")
        storage = FsspecStore.from_settings(load_settings().storage)
    except ForgeError as error:
        fail(error)
    for each in tasks:
        for step in each.steps:
            typer.secho(f"== {each.key} / {step.name} ({step.status.value})", bold=True)
            if step.logs_s3_key is None:
                typer.echo("(no log: the step did not run)")
                continue
            try:
                _print_log(storage, step.logs_s3_key)
            except FileNotFoundError:
                typer.echo(f"(log missing at {storage.location(step.logs_s3_key)})")


LOG_CHUNK = 1024 * 1024
"""How much of a log ``forge logs`` holds at a time: a log is copied through, never read whole."""


def _print_log(storage: ObjectStore, key: str) -> None:
    import shutil
    import sys

    with storage.open_bytes(key) as handle:  # opened first: a missing log prints nothing of it
        sys.stdout.flush()
        shutil.copyfileobj(handle, sys.stdout.buffer, LOG_CHUNK)
        sys.stdout.buffer.flush()


def cancel(run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run's id.")]) -> None:
    """Cancel a run: it stops, and its unfinished phases, tasks and steps are cancelled."""
    from forge_core.domain.errors import ForgeError

    try:
        _with_client(lambda client: client.cancel_run(run_id))
    except ForgeError as error:
        fail(error)
    typer.echo(f"run {run_id} cancelled")


def _with_client(call: Callable[[PlatformClient], Awaitable[T]]) -> T:
    """Run ``call(client)`` against the Platform API (configured, or the local one)."""
    import asyncio

    from forge_core.cli.platform import platform_client

    settings, host = settings_and_plugins()

    async def go() -> T:
        async with platform_client(settings, host) as client:
            return await call(client)

    return asyncio.run(go())
