#!/usr/bin/env python3
"""Build the example monorepo as a real git repository with history and tags.

    python examples/make_example.py [TARGET]     (default: examples/generated/acme)

History: the initial import (tagged ``greeting/v0.1.0``), then a change to the API released as
``api/v1.2.0`` (HEAD, on ``main``). Importable: ``make_example(target) -> Path``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "monorepo"
DEFAULT_TARGET = Path(__file__).resolve().parent / "generated" / "acme"
MARKER = ".forge-example"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Acme Developer",
    "GIT_AUTHOR_EMAIL": "dev@acme.test",
    "GIT_COMMITTER_NAME": "Acme Developer",
    "GIT_COMMITTER_EMAIL": "dev@acme.test",
}


def _git(target: Path, *args: str, when: str | None = None) -> None:
    env = {**os.environ, **_IDENTITY}
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    subprocess.run(["git", "-C", str(target), *args], check=True, capture_output=True, env=env)


def make_example(target: Path = DEFAULT_TARGET) -> Path:
    """Create (or recreate) the example repository in ``target`` and return its path."""
    target = Path(target)
    if target.exists():
        if any(target.iterdir()) and not (target / MARKER).is_file():
            raise SystemExit(f"{target} exists and is not an example made by this script; not replacing it")
        shutil.rmtree(target)
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    changelog = target / "services" / "api" / "CHANGELOG.md"
    first = changelog.read_text()
    (target / MARKER).write_text("made by examples/make_example.py; safe to delete\n")
    _git(target, "init", "--quiet", "--initial-branch=main")
    (target / ".git" / "info" / "exclude").write_text(MARKER + "\n")
    _git(target, "add", "--all")
    _git(target, "commit", "--quiet", "-m", "Import the acme monorepo", when="2026-01-05T10:00:00Z")
    _git(target, "tag", "greeting/v0.1.0")
    changelog.write_text(first + "- 1.2.0: health endpoint reports the version\n")
    _git(target, "commit", "--quiet", "-am", "api: health endpoint reports the version", when="2026-01-12T10:00:00Z")
    _git(target, "tag", "api/v1.2.0")
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the example monorepo as a git repository with tags.")
    parser.add_argument("target", nargs="?", type=Path, default=DEFAULT_TARGET, help=f"default: {DEFAULT_TARGET}")
    print(make_example(parser.parse_args().target))
