"""What the commands of the ``forge`` CLI share: turning errors into exit codes, and loading the
settings and plugins as every entry point does.

Light to import (typer and the domain's errors only), so every CLI module imports it at its top;
rich, pydantic, the settings and the plugins are imported when a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

from forge_core.domain.errors import ConfigurationError, ForgeError, JobFailedError, JobTimeoutError, MessagingError

if TYPE_CHECKING:
    from forge_core.plugin.host import PluginHost
    from forge_core.settings import Settings

# The exit codes that mean something (a ForgeError's own ``exit_code``; 1 for any other error).
EXIT_BAD_INPUT = ConfigurationError.exit_code
EXIT_JOB_FAILED = JobFailedError.exit_code
EXIT_TIMEOUT = JobTimeoutError.exit_code
EXIT_INFRASTRUCTURE = MessagingError.exit_code


def fail(error: ForgeError) -> NoReturn:
    """Print a ForgeError on stderr and exit with its code (the one place errors meet the user)."""
    from rich.console import Console
    from rich.markup import escape

    # Escaped: messages quote user input and grammars ("[a-z0-9._-]") that rich would take as markup.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(str(error))}", markup=True)
    raise typer.Exit(error.exit_code)


def settings_and_plugins() -> tuple[Settings, PluginHost]:
    """The settings, and the plugins they choose, loaded once as every entry point loads them;
    raises a ForgeError naming what is wrong."""
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings

    settings = load_settings()
    return settings, load_plugins(settings.plugins)


def plugin_host() -> PluginHost:
    """The plugins the settings choose; a ForgeError exits cleanly."""
    try:
        return settings_and_plugins()[1]
    except ForgeError as error:
        fail(error)
