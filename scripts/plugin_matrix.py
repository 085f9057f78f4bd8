#!/usr/bin/env python3
"""The per-plugin matrix: each plugin installed alone with the core, in a fresh environment.

For every folder in plugins/: create a virtual environment with only catalyst-forge-core and
that plugin (real, non-editable installs of their built wheels; the plugin's `test` extra too if
it has one), check that `forge plugins --json` lists exactly the core's built-ins and that
plugin, then run the plugin's own tests there (and `mypy` when its pyproject configures it).
Exits non-zero if any plugin fails (pytest's "no tests collected" included).

    uv run python scripts/plugin_matrix.py [PLUGIN ...] [PATH/TO/PLUGIN/FOLDER ...]

A PLUGIN is a folder name in plugins/; a path to a folder outside it (a plugin written by
`forge plugin new`, a third party's) is run through the matrix as well.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from forge_core.builtin import BUILTINS as CORE_BUILTINS

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / ".matrix"
BUILTINS = {plugin_id for plugin_id, _ in CORE_BUILTINS}
UV = str(Path(sys.executable).parent / "uv")  # the workspace's own, pinned in requirements.lock
LOCK = ROOT / "requirements.lock"


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)


def check(plugin: Path) -> list[str]:
    """Problems found for one plugin (empty: it passed)."""
    project = tomllib.loads((plugin / "pyproject.toml").read_text())
    ((name, module),) = project["project"]["entry-points"]["forge.plugins"].items()
    package = module.split(":")[0].split(".")[0]
    extras = "[test]" if "test" in project["project"].get("optional-dependencies", {}) else ""
    venv = MATRIX / plugin.name
    shutil.rmtree(venv, ignore_errors=True)
    python = venv / "bin" / "python"
    steps = [
        ("create venv", [UV, "venv", "--quiet", "--python", sys.executable, venv]),
        # third-party packages at the versions the workspace pins
        ("install", [UV, "pip", "install", "--quiet", "--python", python, "-c", LOCK, f"{ROOT}[testing]",
                     f"{plugin}{extras}"]),
    ]
    for label, command in steps:
        result = run(*command)
        if result.returncode != 0:
            return [f"{label} failed:\n{result.stdout}{result.stderr}"]

    problems: list[str] = []
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    listing = run(venv / "bin" / "forge", "plugins", "--json", env=clean_env, cwd=venv)
    if listing.returncode != 0:
        return [f"forge plugins failed:\n{listing.stderr}"]
    rows = json.loads(listing.stdout)["plugins"]
    ids = {row["id"] for row in rows}
    if ids != BUILTINS | {name}:
        problems.append(f"forge plugins lists {sorted(ids)}, expected the built-ins and {name}")
    mine = next((row for row in rows if row["id"] == name), None)
    if mine is None or mine["status"] != "loaded" or not mine["distribution"] or not mine["version"]:
        problems.append(f"{name} not loaded with distribution and version: {mine}")

    where = run(python, "-c", f"import {package}; print({package}.__file__)", cwd=venv, env=clean_env)
    if str(venv) not in where.stdout:
        problems.append(f"{package} imported from {where.stdout.strip() or where.stderr}, not the matrix environment")

    tests = run(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin, env=clean_env)
    print(tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else tests.stderr, flush=True)
    if tests.returncode != 0:
        problems.append(f"tests failed (exit {tests.returncode}):\n{tests.stdout[-4000:]}{tests.stderr[-2000:]}")
    if "mypy" in project.get("tool", {}):
        typed = run(venv / "bin" / "mypy", cwd=plugin, env=clean_env)
        print(typed.stdout.strip().splitlines()[-1] if typed.stdout.strip() else typed.stderr, flush=True)
        if typed.returncode != 0:
            problems.append(f"mypy failed:\n{typed.stdout[-4000:]}{typed.stderr[-2000:]}")
    return problems


def main(selected: list[str]) -> int:
    plugins = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
    extra = [Path(s).resolve() for s in selected if (Path(s) / "pyproject.toml").is_file()]
    named = [s for s in selected if not (Path(s) / "pyproject.toml").is_file()]
    if selected:
        plugins = [p for p in plugins if p.name in named] + extra
    failed = 0
    for plugin in plugins:
        started = time.perf_counter()
        print(f"== {plugin.name}: core + {plugin.name} only", flush=True)
        problems = check(plugin)
        for problem in problems:
            print(f"   FAIL {problem}", flush=True)
        failed += bool(problems)
        print(f"   {'failed' if problems else 'ok'} in {time.perf_counter() - started:.1f}s", flush=True)
    print(f"matrix: {len(plugins) - failed} passed, {failed} failed")
    return 1 if failed or not plugins else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
