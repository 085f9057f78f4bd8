"""First-party plugins are tested as a third party would test them: their tests import the core
only through the sdk and the test kit (import-linter cannot see test folders, so this checks)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ("forge_core.sdk", "forge_core.testing")
TEST_FILES = sorted((ROOT / "plugins").glob("*/tests/**/*.py"))


def core_imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.extend((node.lineno, name) for name in names if name.split(".")[0] == "forge_core")
    return found


def test_there_are_plugin_tests_to_check() -> None:
    assert len({p.parts[-3] for p in TEST_FILES}) >= 7


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_tests_import_only_the_sdk_and_the_test_kit(path: Path) -> None:
    private = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for line, name in core_imports(path)
        if not any(name == public or name.startswith(public + ".") for public in PUBLIC)
    ]
    assert not private, "plugin tests import core internals (use forge_core.sdk / forge_core.testing):\n" + "\n".join(
        private
    )


def test_the_check_catches_an_internal_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("from forge_core.testing import PluginHost\nimport forge_core.adapters.storage\n")
    assert core_imports(sample) == [(1, "forge_core.testing"), (2, "forge_core.adapters.storage")]
