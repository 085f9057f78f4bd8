"""``forge``: the entry point. Kept light: heavy modules are imported inside the commands.

Plugins (and so pydantic, the settings, stevedore) are loaded only when a command needs them:
a core command that uses plugins loads them itself, and an unknown command name loads them to
look for it among the commands plugins add (``forge_cli_commands``). ``forge --help`` lists the
core commands at once; ``forge plugins`` shows which commands each plugin adds.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from forge_core.domain.errors import ForgeError
    from forge_core.plugin.host import PluginHost

app = typer.Typer(
    name="forge",
    help="Catalyst Forge: from monorepo commit to running deployment.",
    epilog="Installed plugins may add commands: `forge plugins` lists them.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FEATURES: tuple[str, ...] = (
    "forge_core.cli.run",
    "forge_core.cli.project",
    "forge_core.cli.jobs",
    "forge_core.cli.api",
    "forge_core.cli.plugin",
)
"""Modules with a ``register(app)`` function adding a feature's commands; each must stay light
to import (typer only; the work is imported inside the command functions)."""


def fail(error: ForgeError) -> NoReturn:
    """Print a ForgeError on stderr and exit with its code (the one place errors meet the user)."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {error}", markup=True)
    raise typer.Exit(error.exit_code)


def plugin_host() -> PluginHost:
    """Settings and plugins, loaded as every entry point does; a ForgeError exits cleanly."""
    from forge_core.domain.errors import ForgeError
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings

    try:
        return load_plugins(load_settings().plugins)
    except ForgeError as error:
        fail(error)


@app.command()
def version() -> None:
    """Show the version of the core."""
    from forge_core import DISTRIBUTION, __version__

    typer.echo(f"{DISTRIBUTION} {__version__}")


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List plugins: id, distribution, version, names registered, hooks, load errors."""
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


def _invoked_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def core_commands() -> set[str]:
    import importlib

    for feature in FEATURES:
        importlib.import_module(feature).register(app)
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    return names | {g.name for g in app.registered_groups if g.name}


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    if _invoked_command(args) not in core_commands() | {None}:
        try:
            host = plugin_host()
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
        for error in host.extend_cli(app):
            typer.echo(f"warning: {error}", err=True)
    return app(args=args, prog_name="forge")


if __name__ == "__main__":
    main()
