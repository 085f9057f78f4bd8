"""``forge plugin new``: write a plugin distribution to start from. Light to import (typer only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FAMILIES = ("publisher", "producer", "step-runner", "job-handler", "trigger", "renderer", "notifier")
"""The families ``forge plugin new`` writes (each has a template in forge_core.plugin.scaffold)."""

plugin_app = typer.Typer(help="Write plugins: `forge plugin new NAME --family publisher`.", no_args_is_help=True)


@plugin_app.command()
def new(
    name: Annotated[str, typer.Argument(help="The plugin's name: its id, and what users write as type/action.")],
    family: Annotated[str, typer.Option("--family", help=f"What it implements: {', '.join(FAMILIES)}.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to write (default: ./<distribution>).")
    ] = None,
) -> None:
    """Write a complete plugin distribution: pyproject, package, README and typed contract tests."""
    from forge_core.cli.main import fail
    from forge_core.domain.errors import ForgeError
    from forge_core.plugin.scaffold import Names, write_distribution

    folder = output or Path(Names(name).distribution)
    try:
        written = write_distribution(name, family, folder)
    except ForgeError as error:
        fail(error)
    typer.echo(f"wrote {Names(name).distribution} ({family} {name!r}) into {folder}:")
    for path in written:
        typer.echo(f"  {path.relative_to(folder)}")
    typer.echo(f"next: cd {folder} && pip install -e '.[test]' && pytest && mypy")


def register(app: typer.Typer) -> None:
    app.add_typer(plugin_app, name="plugin")
