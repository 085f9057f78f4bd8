"""Fixtures for the Argo orchestrator tests: the stand-in Argo Server validating every submitted
Workflow against Argo's JSON Schema, a recording RunRecorder, a recorded plan."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parents[1] / "jobs"))

from jobs_support import RecordingRecorder

from forge_core.settings.orchestrator import ArgoSettings
from forge_core.testing.argo import ArgoServerStandIn, Validate, argo_server, workflow_validator

ARGO_SCHEMA = Path("/work/shared/schemas/argo-workflows/schema.json")
TOKEN = "argo-test-token"


@pytest.fixture(scope="session")
def validate() -> Validate:
    return workflow_validator(ARGO_SCHEMA)


@pytest.fixture
def argo(validate: Validate) -> Iterator[ArgoServerStandIn]:
    with argo_server(TOKEN, validate) as server:
        yield server


@pytest.fixture
def argo_settings(argo: ArgoServerStandIn) -> ArgoSettings:
    return ArgoSettings(url=argo.url, token=SecretStr(TOKEN), namespace="forge", poll_interval=0.05,
                        dispatch_template="forge-catalyst-forge-dispatch")


@pytest.fixture
def recorder() -> RecordingRecorder:
    return RecordingRecorder()


def task(task_id: str, *targets: str, project: str = "api") -> dict[str, Any]:
    return {
        "id": task_id, "key": f"{project}:{task_id}", "project_name": project, "project_path": project,
        "steps": [{"id": f"{task_id}-s{i}", "name": f"step{i}", "action": "exec", "target": t}
                  for i, t in enumerate(targets)],
    }


def phase(phase_id: str, group: int, *tasks: dict[str, Any], required: bool | None = None) -> dict[str, Any]:
    entry = {"id": phase_id, "name": phase_id, "group_number": group, "tasks": list(tasks)}
    return entry if required is None else {**entry, "required": required}


@pytest.fixture
def plan() -> dict[str, Any]:
    """Group 1: test (a, b in parallel) and lint (not required); group 2: build (c)."""
    return {"phases": [
        phase("test", 1, task("a", "echo a"), task("b", "echo b", project="web")),
        phase("lint", 1, task("l", "exit 1"), required=False),
        phase("build", 2, task("c", "echo c")),
    ]}
