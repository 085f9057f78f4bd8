"""The test kit of the earthly plugin: a stand-in ``earthly`` executable (``standin.py``) put on
PATH, for machines where Earthly cannot run. Use it from a plugin's ``conftest.py``::

    from forge_earthly.testing import earthly_standin
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from forge_earthly import standin


@dataclass(frozen=True)
class EarthlyStandin:
    """The stand-in on PATH as ``earthly`` (also at ``binary``), and helpers to script it."""

    binary: Path

    @staticmethod
    def script(folder: Path, targets: dict[str, dict[str, Any]]) -> Path:
        """Write an Earthfile and the stand-in's script of ``targets`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Earthfile").write_text("VERSION 0.8\n" + "".join(f"{name}:\n    RUN true\n" for name in targets))
        (folder / standin.SCRIPT).write_text(json.dumps({"targets": targets}))
        return folder

    @staticmethod
    def calls(folder: Path) -> list[dict[str, Any]]:
        """The runs the stand-in recorded in ``folder``, in order."""
        path = folder / standin.CALLS
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.fixture
def earthly_standin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> EarthlyStandin:
    """The stand-in executable as ``earthly`` first on PATH (the default ``binary`` setting)."""
    folder = tmp_path_factory.mktemp("earthly-bin")
    binary = folder / "earthly"
    # -I: isolated (no user site, no PYTHON* variables): the stand-in needs only the stdlib
    binary.write_text(f"#!{sys.executable} -I\n" + Path(standin.__file__).read_text())
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ.get('PATH', '')}")
    return EarthlyStandin(binary)
