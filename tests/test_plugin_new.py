"""`forge plugin new` writes a distribution that installs alone with the core and passes its own
tests, mypy --strict and the per-plugin matrix."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forge_core.cli.plugin import FAMILIES
from forge_core.plugin.scaffold import TEMPLATES, core_range, write_distribution

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).parent / "uv")


def test_every_family_the_cli_offers_has_a_template() -> None:
    assert set(FAMILIES) == set(TEMPLATES)


def test_forge_plugin_new_writes_a_complete_distribution(run_forge: Callable[..., Any], tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    result = run_forge("plugin", "new", "acme", "--family", "publisher", "--output", str(folder))
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["project"]["name"] == "acme-forge-plugin"
    assert project["project"]["entry-points"]["forge.plugins"] == {"acme": "acme_forge_plugin"}
    assert project["project"]["dependencies"] == [f"catalyst-forge-core{core_range()}"]
    assert project["tool"]["mypy"]["strict"] is True
    package = folder / "acme_forge_plugin"
    assert (package / "py.typed").exists()
    assert 'register.add(\n        "acme",\n        "acme_forge_plugin.publisher:FolderPublisher",' in (
        package / "__init__.py"
    ).read_text()
    assert "class TestFolderPublisher(PublisherContract):" in (folder / "tests" / "test_publisher.py").read_text()
    assert "acme-forge-plugin" in (folder / "README.md").read_text()
    assert "pyproject.toml" in result.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["Acme", "--family", "publisher"], "invalid plugin name 'Acme'"),
        (["acme", "--family", "widget"], "unknown family 'widget'; choose one of: publisher, producer"),
    ],
)
def test_forge_plugin_new_refuses_bad_input(
    run_forge: Callable[..., Any], tmp_path: Path, args: list[str], problem: str
) -> None:
    result = run_forge("plugin", "new", *args, "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert problem in result.stderr
    assert not (tmp_path / "out").exists()


def test_forge_plugin_new_never_writes_into_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    from forge_core.domain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="is not empty"):
        write_distribution("acme", "publisher", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_generated_publisher_passes_the_matrix_alone_with_the_core(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    write_distribution("acme", "publisher", folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin_matrix.py"), str(folder)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout  # the contract's six checks and the plugin's own test
    assert "Success: no issues found" in result.stdout  # mypy --strict
    assert "matrix: 1 passed, 0 failed" in result.stdout


def test_every_family_template_passes_its_tests_and_mypy_strict(tmp_path: Path) -> None:
    folders = {family: tmp_path / family for family in TEMPLATES if family != "publisher"}
    for family, folder in folders.items():
        write_distribution(f"acme-{family}", family, folder)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    install = [UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(ROOT / "requirements.lock")]
    install += [f"{ROOT}[testing]", *(f"{folder}[test]" for folder in folders.values())]
    subprocess.run(install, check=True, timeout=600, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    for family, folder in folders.items():
        tests = subprocess.run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"], cwd=folder,
                               capture_output=True, text=True, env=env, timeout=300)
        assert tests.returncode == 0, f"{family}:\n{tests.stdout}{tests.stderr}"
        assert " passed" in tests.stdout and "failed" not in tests.stdout
        typed = subprocess.run([str(venv / "bin" / "mypy")], cwd=folder, capture_output=True, text=True, env=env,
                               timeout=300)
        assert typed.returncode == 0, f"{family}:\n{typed.stdout}{typed.stderr}"
