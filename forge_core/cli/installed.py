"""``forge version`` and ``forge plugins``: what is installed, and what failed to load."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from forge_core.cli.common import plugin_host


def register(app: typer.Typer) -> None:
    app.command()(version)

    @app.command()
    def plugins(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """List plugins: id, distribution, version, names registered, hooks, load errors."""
        list_plugins(app, as_json=as_json)


def version() -> None:
    """Show the version of the core."""
    from forge_core import DISTRIBUTION, __version__

    typer.echo(f"{DISTRIBUTION} {__version__}")


def list_plugins(app: typer.Typer, *, as_json: bool) -> None:
    host = plugin_host()
    host.extend_cli(app)  # records the commands each plugin adds
    rows = host.describe()
    if as_json:
        import json

        typer.echo(json.dumps({"plugins": rows}, indent=2))
    else:
        _print_plugins(rows)


def _print_plugins(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Catalyst Forge plugins", show_lines=True)
    for column in ("plugin", "distribution", "version", "registers", "hooks", "commands", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        registers = "\n".join(f"{family}: {', '.join(names)}" for family, names in row["registrations"].items())
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error']}"
        style = {"failed": "red", "disabled": "dim"}.get(row["status"], "")
        table.add_row(
            row["id"],
            row["distribution"] or "-",
            row["version"] or "-",
            registers or "-",
            "\n".join(row["hooks"]) or "-",
            "\n".join(row["commands"]) or "-",
            status,
            style=style,
        )
    console = Console()
    console.print(table)
    for row in rows:
        if row["status"] == "failed":  # unwrapped, so it can be copied and searched
            message = f"[red]{row['id']}[/] ({row['distribution']}): {row['error']}"
            console.print(message, highlight=False, soft_wrap=True)
