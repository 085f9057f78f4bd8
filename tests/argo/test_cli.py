"""``forge workflow render`` on the example monorepo at its release tag, ``forge workflow close``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from forge_core.testing.argo import Validate

EXAMPLES = Path(__file__).parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

from make_example import make_example  # noqa: E402  (examples/ is not a package)

FORGE = str(Path(sys.executable).parent / "forge")


def forge(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FORGE, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_example(tmp_path_factory.mktemp("example") / "acme")
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "https://git.example/acme/monorepo.git"],
                   check=True)
    return repo


def test_render_prints_the_release_tags_workflow_with_the_artifact_release_and_deploy_stages(
    acme: Path, tmp_path: Path, validate: Validate,
) -> None:
    done = forge("workflow", "render", str(acme), "--run-id", "r7", cwd=tmp_path,
                 env={"FORGE_STATE_DIR": str(tmp_path / "state"), "FORGE_ORCHESTRATOR__ARGO__NAMESPACE": "ci"})
    assert done.returncode == 0, done.stderr
    workflow: dict[str, Any] = yaml.safe_load(done.stdout)
    assert validate(workflow) == []
    assert workflow["metadata"] == {
        "labels": {"forge.projectcatalyst.io/run-id": "r7", "app.kubernetes.io/managed-by": "catalyst-forge"},
        "name": "forge-run-r7", "namespace": "ci",
    }
    (dag,) = [t["dag"] for t in workflow["spec"]["templates"] if t["name"] == "run"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for task in dag["tasks"]:
        kind = task.get("templateRef", {}).get("template", task.get("template"))
        by_type.setdefault(kind, []).append(task)
    assert set(by_type) == {"dispatch-discovery", "dispatch-ci", "dispatch-artifact", "stage-release",
                            "stage-deploy", "close-run"}
    (artifact,) = by_type["dispatch-artifact"]  # api/v1.2.0 releases api only
    (release,) = by_type["stage-release"]
    assert json.loads(release["arguments"]["parameters"][0]["value"])["project"]["project"]["name"] == "api"
    job = json.loads(artifact["arguments"]["parameters"][0]["value"])
    assert job["payload"]["version"] == "1.2.0"
    assert job["payload"]["source"]["repository"] == "https://git.example/acme/monorepo.git"
    assert job["payload"]["source"]["tag"] == "api/v1.2.0"
    ci = json.loads(by_type["dispatch-ci"][0]["arguments"]["parameters"][0]["value"])
    assert ci["payload"]["source"]["repository"] == "https://git.example/acme/monorepo.git"


def test_render_of_an_unknown_revision_names_it(acme: Path, tmp_path: Path) -> None:
    done = forge("workflow", "render", str(acme), "--commit", "no-such-rev", cwd=tmp_path,
                 env={"FORGE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 2
    assert "no-such-rev" in done.stderr
    assert done.stdout == ""


def test_close_refuses_an_unknown_status_and_needs_the_api(tmp_path: Path) -> None:
    done = forge("workflow", "close", "--run-id", "r1", "--status", "Weird", cwd=tmp_path)
    assert done.returncode == 2 and "--status: unknown Workflow status 'Weird'" in done.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_API__")}
    done = subprocess.run([FORGE, "workflow", "close", "--run-id", "r1", "--status", "Failed"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "FORGE_API__URL" in done.stderr


def test_the_stage_tasks_refuse_a_missing_or_wrong_request_naming_the_file(tmp_path: Path) -> None:
    env = {"FORGE_STATE_DIR": str(tmp_path / "state"), "FORGE_API__URL": "http://127.0.0.1:9",
           "FORGE_API__TOKEN": "unused"}
    missing = tmp_path / "request.json"
    done = forge("workflow", "release", "--request-file", str(missing), cwd=tmp_path, env=env)
    assert done.returncode == 2 and f"{missing}: cannot read the request" in done.stderr
    missing.write_text('{"run_id": "r1"}')
    done = forge("workflow", "deploy", "--request-file", str(missing), cwd=tmp_path, env=env)
    assert done.returncode == 2 and "not a deploy request: repository: Field required" in done.stderr
