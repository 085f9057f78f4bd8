"""The forge CLI, run as a user runs it (a fresh interpreter per command)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from forge_core import __version__

BROKEN = "raise RuntimeError('cannot reach license server')\n"
GREETER = """
import typer
from forge_core.sdk import hookimpl

@hookimpl
def forge_cli_commands(cli):
    @cli.command()
    def greet(name: str) -> None:
        '''Say hello.'''
        typer.echo(f"hello {name}")
"""


def test_version(run_forge: Callable[..., object]) -> None:
    result = run_forge("version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"catalyst-forge-core {__version__}"


def test_help_lists_the_core_commands(run_forge: Callable[..., object]) -> None:
    result = run_forge("--help")
    assert result.returncode == 0
    assert "plugins" in result.stdout and "version" in result.stdout


HELP_IMPORTS = """
import sys
from forge_core.cli.main import main
try:
    main(["--help"])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)))
"""


def test_help_imports_neither_pydantic_nor_the_settings_nor_the_plugins() -> None:
    done = subprocess.run([sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, check=True)
    loaded = done.stdout.splitlines()[-1].split()
    assert "forge_core.cli.common" in loaded and "forge_core.cli.run" in loaded  # the commands are listed
    heavy = ("pydantic", "forge_core.settings", "forge_core.adapters", "stevedore", "pluggy", "rich", "git")
    assert [m for m in loaded if m in heavy or m.startswith(tuple(f"{h}." for h in heavy))] == []


def test_plugins_json_lists_builtins_and_installed_plugins(run_forge: Callable[..., object]) -> None:
    result = run_forge("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)["plugins"]}
    assert rows["core.triggers"]["distribution"] == "catalyst-forge-core"
    assert rows["forge_docker"]["distribution"] == "catalyst-forge-docker"
    assert rows["forge_docker"]["registrations"] == {"producer": ["container"], "publisher": ["docker"]}


def test_plugins_table_shows_a_failed_plugin_and_the_others(
    run_forge: Callable[..., object], make_distribution: Callable[..., Path]
) -> None:
    site = make_distribution("acme-forge-broken", "0.3", plugin_id="acme_broken", source=BROKEN)
    result = run_forge("plugins", path=site)
    assert result.returncode == 0, result.stderr
    assert "acme_broken" in result.stdout and "cannot reach license server" in result.stdout
    assert "forge_docker" in result.stdout and "loaded" in result.stdout


def test_strict_mode_exits_non_zero_naming_the_plugin(
    run_forge: Callable[..., object], make_distribution: Callable[..., Path]
) -> None:
    site = make_distribution("acme-forge-broken", "0.3", plugin_id="acme_broken", source=BROKEN)
    result = run_forge("plugins", path=site, env={"FORGE_PLUGINS__STRICT": "true"})
    assert result.returncode == 3
    assert "acme_broken" in result.stderr and "acme-forge-broken" in result.stderr
    assert "Traceback" not in result.stderr


def test_blocked_plugin_is_listed_as_disabled(run_forge: Callable[..., object]) -> None:
    result = run_forge("plugins", "--json", env={"FORGE_PLUGINS__BLOCK": "forge_s3"})
    rows = {row["id"]: row for row in json.loads(result.stdout)["plugins"]}
    assert rows["forge_s3"]["status"] == "disabled"
    assert rows["forge_s3"]["registrations"] == {}


def test_bad_settings_exit_2_with_the_variable_named(run_forge: Callable[..., object]) -> None:
    result = run_forge("plugins", env={"FORGE_PLUGINS__AUTOLOAD": "sometimes"})
    assert result.returncode == 2
    assert "FORGE_PLUGINS__AUTOLOAD" in result.stderr


def test_plugin_command_runs_and_is_listed(
    run_forge: Callable[..., object], make_distribution: Callable[..., Path]
) -> None:
    site = make_distribution("acme-forge-greeter", "1.0", plugin_id="acme_greeter", source=GREETER)
    result = run_forge("greet", "operator", path=site)
    assert (result.returncode, result.stdout.strip()) == (0, "hello operator")
    listing = json.loads(run_forge("plugins", "--json", path=site).stdout)
    greeter = next(row for row in listing["plugins"] if row["id"] == "acme_greeter")
    assert greeter["commands"] == ["greet"] and greeter["hooks"] == ["forge_cli_commands"]


def test_unknown_command_is_a_usage_error(run_forge: Callable[..., object]) -> None:
    result = run_forge("deploy-everything")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_help_imports_neither_pydantic_nor_the_plugin_machinery() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom forge_core.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pydantic', 'stevedore'}"
        " or m.startswith(('forge_core.plugin', 'forge_core.settings'))), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "plugin" in result.stdout  # `forge plugin new` is listed
    assert result.stderr.strip().splitlines()[-1] == "[]"
