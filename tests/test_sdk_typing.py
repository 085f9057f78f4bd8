"""A plugin author's `mypy --strict` is clean against the sdk: hookimpl keeps signatures typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from collections.abc import Generator

from forge_core.sdk import PipelineRunInfo, PublisherRegistrar, RunStatus, hookimpl


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add("shelf", "acme_shelf.publisher:Shelf", artifact_types=["archive"])


@hookimpl(tryfirst=True)
def forge_pipeline_run_started(run: PipelineRunInfo) -> None:
    print(run.id)


@hookimpl(wrapper=True)
def forge_pipeline_run_finished(run: PipelineRunInfo) -> Generator[None, None, None]:
    yield


forge_pipeline_run_started(PipelineRunInfo(id="r", repository="a/b", commit="c", status=RunStatus.RUNNING))
'''


def mypy(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "acme_shelf.py"
    module.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )


def test_hookimpl_decorated_functions_stay_typed_under_mypy_strict(tmp_path: Path) -> None:
    result = mypy(PLUGIN, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_catches_a_wrong_type_through_hookimpl(tmp_path: Path) -> None:
    wrong = PLUGIN + '\nforge_pipeline_run_started("r-1")\n'
    result = mypy(wrong, tmp_path)
    assert result.returncode == 1
    assert 'Argument 1 to "forge_pipeline_run_started" has incompatible type "str"' in result.stdout
