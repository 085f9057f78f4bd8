"""``forge run``'s start-up stays lean: what it imports before the first job (the CLI, the
settings and plugins, the in-process API through its lifespan, a worker of every job type) never
includes a module imported only for a feature the run may not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAZY = (
    "forge_core.api.ui.pages",  # the console's pages: only with `forge run --ui`
    "jinja2",  # their templates
    "forge_core.services.sbom",  # SBOMs: only when an artifact is tracked or a tracking record read
    "cyclonedx",
)

PROBE = """
import asyncio, json, sys
from forge_core.cli.main import core_commands
from forge_core.cli.common import settings_and_plugins
from forge_core.cli.pipeline import JOB_TYPES, RUN_PERMISSIONS
from forge_core.cli.platform import platform_client
from forge_core.adapters.storage import FsspecStore
from forge_core.worker.runner import Worker

core_commands()
settings, host = settings_and_plugins()

async def start() -> list[str]:
    async with platform_client(settings, host, permissions=RUN_PERMISSIONS) as client:
        runs = await client.list_runs(repository=None, limit=1)  # the API really answers
        storage = FsspecStore.from_settings(settings.storage)
        workers = [Worker(settings, host, job_type, client, storage) for job_type in JOB_TYPES]
        return [runs.model_dump_json(), *(w.job_type for w in workers)]

print(json.dumps({"started": asyncio.run(start()), "imported": sorted(set(sys.modules) & set(LAZY))}))
"""


def test_forge_run_start_up_does_not_import_the_lazy_modules(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "state"), FORGE_WORKER__CACHE_DIR=str(tmp_path / "cache"))
    probe = f"LAZY = {LAZY!r}\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["started"][1:] == ["discovery", "ci", "artifact", "release", "deployment"]
    assert json.loads(report["started"][0])["runs"] == []
    assert report["imported"] == []
