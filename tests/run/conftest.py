"""Fixtures for `forge run`: the example monorepo as a real git repository, and the environment
of a user's shell pointing the embedded defaults at a temporary state folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from make_example import make_example  # noqa: E402


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return make_example(tmp_path / "acme")


@pytest.fixture
def commit_change() -> Callable[[Path, str, str, str], None]:
    """Edit a file of the example and commit it (a new commit gets a new run)."""
    return _commit_change


def _commit_change(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    text = file.read_text()
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", f"change {path}"], check=True, env=env)


@pytest.fixture
def forge_env(tmp_path: Path, prefix: str) -> dict[str, str]:
    """A clean environment on the embedded defaults, in a private state folder, on the shared
    NATS server behind a unique prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(
        FORGE_STATE_DIR=str(tmp_path / "state"),
        FORGE_WORKER__CACHE_DIR=str(tmp_path / "cache"),
        FORGE_NATS__URL="nats://127.0.0.1:4222",
        FORGE_NATS__PREFIX=prefix,
        COLUMNS="200",
    )
    return env


@pytest.fixture
def forge(forge_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, env: dict[str, str | None] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """``env`` values override the fixture's; None removes a variable."""
        merged = {**forge_env, **(env or {})}
        return subprocess.run(
            [str(Path(sys.executable).parent / "forge"), *args],
            capture_output=True, text=True, env={k: v for k, v in merged.items() if v is not None}, timeout=timeout,
        )

    run.env = forge_env  # type: ignore[attr-defined]
    return run
