"""``forge run``, ``forge runs`` and ``forge logs``: the main job, and reading its history back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from forge_core.cli.common import fail, settings_and_plugins

if TYPE_CHECKING:
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.services.schemas import Step

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
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Wait for steps still running, printing their lines as they come.")
    ] = False,
) -> None:
    """Print the logs of a run's steps (of one task with --task), read from the Platform API a
    page at a time: a log of any size is copied through, never held whole."""
    from forge_core.domain.errors import ConfigurationError, ForgeError

    async def show(client: PlatformClient) -> None:
        found = await client.get_run(run_id)
        tasks = [t for phase in found.phases for t in phase.tasks]
        if task is not None:
            tasks = [t for t in tasks if task in (t.key, str(t.id))]
            if not tasks:
                keys = ", ".join(t.key for phase in found.phases for t in phase.tasks)
                raise ConfigurationError(f"run {run_id} has no task {task!r}; its tasks: {keys}", where="--task")
        for each in tasks:
            for step in each.steps:
                await _print_step_log(client, str(found.id), each.key, step, follow=follow)

    try:
        _with_client(show)
    except ForgeError as error:
        fail(error)
    except KeyboardInterrupt:  # Ctrl-C while following
        raise typer.Exit(130) from None


LOG_CHUNK = 1024 * 1024
"""How much of a log ``forge logs`` asks the API for (and holds) at a time."""
FOLLOW_INTERVAL = 0.5
"""Seconds between two looks at a running step's log with --follow."""


async def _print_step_log(client: PlatformClient, run_id: str, task_key: str, step: Step, *, follow: bool) -> None:
    import asyncio
    import sys

    from forge_core.services.errors import NotFound

    offset, status = 0, step.status.value
    header_shown = False
    while True:
        try:
            page = await client.step_log(run_id, step.id, offset=offset, limit=LOG_CHUNK)
        except NotFound as missing:
            if not header_shown:
                typer.secho(f"== {task_key} / {step.name} ({status})", bold=True)
            typer.echo(f"({missing.message})")
            return
        if not header_shown:  # named with the status the first page was read with
            typer.secho(f"== {task_key} / {step.name} ({page.step_status})", bold=True)
            sys.stdout.flush()
            header_shown = True
        if page.no_log:
            typer.echo(f"(no log: {page.no_log})")
            return
        if page.data:
            sys.stdout.buffer.write(page.data)
            sys.stdout.buffer.flush()
        offset = page.next_offset
        if offset < page.size:
            continue  # more is stored: the next page at once
        if page.complete:
            return
        if not follow:
            if offset == 0:
                typer.echo(f"(no log yet: the step is {page.step_status}; --follow waits for it)")
            return
        await asyncio.sleep(FOLLOW_INTERVAL)


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
