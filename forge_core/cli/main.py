"""``forge``: the entry point. Kept light: heavy modules are imported inside the commands.

Plugins (and so pydantic, the settings, stevedore) are loaded only when a command needs them:
a core command that uses plugins loads them itself, and an unknown command name loads them to
look for it among the commands plugins add (``forge_cli_commands``). ``forge --help`` lists the
core commands at once; ``forge plugins`` shows which commands each plugin adds.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from forge_core.cli.common import fail, plugin_host

__all__ = ["app", "core_commands", "fail", "main", "plugin_host"]  # fail, plugin_host: older imports

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
    "forge_core.cli.installed",
    "forge_core.cli.run",
    "forge_core.cli.releases",
    "forge_core.cli.project",
    "forge_core.cli.jobs",
    "forge_core.cli.api",
    "forge_core.cli.plugin",
    "forge_core.cli.inspect",
    "forge_core.cli.cmp",
    "forge_core.cli.fleet",
    "forge_core.cli.ui",
    "forge_core.cli.workflow",
    "forge_core.cli.server",
)
"""Modules with a ``register(app)`` function adding a feature's commands; each must stay light
to import (typer only; the work is imported inside the command functions)."""


def _invoked_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def core_commands() -> set[str]:
    """Register the core's commands on ``app`` (once) and return their names."""
    import importlib

    if not app.registered_commands:
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
