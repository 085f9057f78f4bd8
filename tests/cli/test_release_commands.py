"""`forge releases`, `release show`, `promote`, `deploy`, `approve`, `revoke`, `rollback` and
`status`, run as a user runs them (a fresh interpreter per command) against the embedded API on
a temporary state folder. The setup (runs, releases, the deployment job's landings, another
person's approval) goes through the same API in this process; the CLI's own deploys, promotions
and rollbacks land through its in-process deployment workers (the embedded GitOps repository)."""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import platform_key
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings import Settings, load_settings

REPO = "acme/shop"
ME = getpass.getuser()

Forge = Callable[..., subprocess.CompletedProcess[str]]


class Setup:
    """The API in this process, as ``subject`` (an admin): what the CLI then reads and changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def call(self, method: str, path: str, subject: str = "alice", **kwargs: Any) -> Any:
        token = platform_key(self.settings).mint(subject, roles=["admin"])
        app = create_app(self.settings, load_plugins(self.settings.plugins))
        with TestClient(app) as client:
            response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def release(self, project: str, tag: str | None = "v1.0.0") -> dict[str, Any]:
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        run = self.call("POST", "/v1/runs", json={"repository": REPO, "commit_sha": sha, "triggered_by": "alice",
                                                  "branch": "main", "tag": tag, "trigger_type": "tag"})
        trigger = {"trigger_type": "tag", "tag": tag, "branch": "main"}
        body = {"repository": REPO, "project": project, "commit_sha": sha, "pipeline_run_id": run["id"],
                "trigger": trigger}
        created: dict[str, Any] = self.call("POST", "/v1/releases", json=body)
        return created

    def land(self, release: dict[str, Any], environment: str) -> None:
        """What the deployment job does once the pointer commit landed: the release is active."""
        self.call("POST", "/v1/deployments", json={"release_id": release["id"], "environment": environment})


@pytest.fixture
def forge_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "state"), COLUMNS="200")
    return env


@pytest.fixture
def setup(forge_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Setup:
    for name in [k for k in os.environ if k.startswith("FORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORGE_STATE_DIR", forge_env["FORGE_STATE_DIR"])
    return Setup(load_settings())


@pytest.fixture
def forge(forge_env: dict[str, str], tmp_path: Path) -> Forge:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "forge_core.cli.main", *args], capture_output=True,
                              text=True, env=forge_env, cwd=tmp_path, timeout=120)

    return run


def test_promotion_from_dev_to_production_through_the_cli(setup: Setup, forge: Forge) -> None:
    web, api = setup.release("web"), setup.release("api")
    setup.land(web, "dev")
    setup.land(api, "dev")

    listed = forge("releases", "--repo", REPO, "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["project"] for r in json.loads(listed.stdout)["releases"]) == ["api", "web"]
    shown = forge("release", "show", "web", "v1.0.0", "--repo", REPO)
    assert shown.returncode == 0, shown.stderr
    assert "web release 1" in shown.stdout and "tag (branch main, tag v1.0.0)" in shown.stdout

    dry = forge("promote", "web", "api", "--to", "staging", "--repo", REPO, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert (json.loads(dry.stdout)["allowed"], json.loads(dry.stdout)["deployments"]) == (True, [])
    both = forge("promote", "web", "api", "--to", "staging", "--repo", REPO)  # each: what runs in dev
    assert both.returncode == 0, both.stderr
    assert "promotion of web release 1 to staging: allowed" in both.stdout
    assert "allowed  branch: branch 'main' matches 'main'" in both.stdout
    # on the embedded API the CLI lands them: both pointers in one GitOps commit
    assert len(set(re.findall(r"to staging is active: GitOps commit ([0-9a-f]{40})", both.stdout))) == 1
    assert both.stdout.count("to staging is active: GitOps commit") == 2

    refused = forge("promote", "web", "--to", "production", "--repo", REPO)
    assert refused.returncode == 1
    assert "BLOCKED  approvals: 0 of 1 approval from someone other than the author (alice)" in refused.stdout
    assert "refused: rule `approvals`" in refused.stderr

    mine = forge("approve", "web", "1", "--env", "production", "--justification", "CAB-1", "--repo", REPO,
                 "--json")
    assert mine.returncode == 0, mine.stderr
    approval = json.loads(mine.stdout)
    assert approval["approver"] == ME
    still = forge("promote", "web", "--to", "production", "--repo", REPO, "--json")
    assert still.returncode == 1
    assert f"{ME} (the promoter)" in json.loads(still.stdout)["explanation"]
    revoked = forge("revoke", approval["id"])
    assert (revoked.returncode, revoked.stdout.strip()) == (0, f"approval {approval['id']} revoked")

    body = {"release_id": web["id"], "environment": "production", "justification": "CAB-2"}
    setup.call("POST", "/v1/approvals", subject="carol", json=body)  # another person
    accepted = forge("promote", "web@1", "--to", "production", "--repo", REPO, "--json")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    (deployment,) = json.loads(accepted.stdout)["deployments"]
    assert (deployment["project"], deployment["environment"], deployment["deployed_by"]) == ("web", "production", ME)

    matrix = forge("status", "--repo", REPO)
    assert matrix.returncode == 0, matrix.stderr
    assert "dev" in matrix.stdout and "production" in matrix.stdout
    assert "#1 since" in matrix.stdout and f"by {ME}" in matrix.stdout
    history = json.loads(forge("status", "web", "--repo", REPO, "--history", "--json").stdout)
    assert history["environments"] == ["dev", "staging", "production"]
    assert history["matrix"]["web"]["production"]["status"] == "active"
    assert [(d["environment"], d["status"]) for d in history["history"]][-1] == ("dev", "active")
    assert len(history["history"]) == 3  # dev, staging and production, each active


QA = {"environments": {"items": [
    {"name": "dev", "auto_deploy": True},
    {"name": "qa", "from": "dev"},
    {"name": "prod-eu", "from": "qa", "approval": {"required": 1}},
]}}


def test_repo_cue_environments_drive_promote_and_status(setup: Setup, forge: Forge) -> None:
    """Environments the platform's settings do not name, declared in the repository's repo.cue
    (recorded with its run's plan): promotion follows their order, status shows their columns."""
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    run = setup.call("POST", "/v1/runs", json={"repository": REPO, "commit_sha": sha, "triggered_by": "alice",
                                               "branch": "main", "trigger_type": "push"})
    setup.call("POST", f"/v1/runs/{run['id']}/plan", json=QA)
    web = setup.call("POST", "/v1/releases", json={
        "repository": REPO, "project": "web", "commit_sha": sha, "pipeline_run_id": run["id"],
        "trigger": {"trigger_type": "branch_push", "branch": "main"}})
    setup.land(web, "dev")

    promoted = forge("promote", "web", "--to", "qa", "--repo", REPO)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "promotion of web release 1 to qa: allowed" in promoted.stdout
    assert "to qa is active: GitOps commit" in promoted.stdout
    refused = forge("promote", "web", "--to", "staging", "--repo", REPO)
    assert refused.returncode != 0
    assert "unknown environment 'staging' for acme/shop; known to its repo.cue: dev, qa, prod-eu" in refused.stderr
    blocked = forge("promote", "web", "--to", "prod-eu", "--repo", REPO)
    assert blocked.returncode == 1 and "refused: rule `approvals`" in blocked.stderr

    status = json.loads(forge("status", "--repo", REPO, "--json").stdout)
    assert (status["environments"], status["environments_source"]) == (["dev", "qa", "prod-eu"], "repo.cue")
    assert {e: d["status"] for e, d in status["matrix"]["web"].items()} == {"dev": "active", "qa": "active"}
    table = forge("status", "--repo", REPO)
    assert re.search(r"project +┃ dev +┃ qa +┃ prod-eu", table.stdout), table.stdout


def test_release_show_lists_the_custom_aliases_apart(setup: Setup, forge: Forge) -> None:
    web = setup.release("web")
    setup.call("PUT", f"/v1/releases/{REPO}/web/aliases/main-latest", json={"release": "1"})
    shown = forge("release", "show", "web", "main-latest", "--repo", REPO)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"aliases +1, v1\.0\.0\n", shown.stdout), shown.stdout
    assert re.search(r"custom +main-latest\n", shown.stdout), shown.stdout
    as_json = json.loads(forge("release", "show", "web", "1", "--repo", REPO, "--json").stdout)
    assert {"alias": "main-latest", "alias_type": "custom"} in as_json["aliases"]
    assert as_json["id"] == web["id"]


def test_rollback_and_deploy_through_the_cli(setup: Setup, forge: Forge) -> None:
    first, second = setup.release("web"), setup.release("web", tag="v1.1.0")
    setup.land(first, "dev")
    setup.land(second, "dev")
    nothing = forge("rollback", "web", "--env", "staging", "--repo", REPO)
    assert nothing.returncode == 6  # not found
    assert "no active deployment in staging" in nothing.stderr

    deployed = forge("deploy", "web", "2", "--env", "staging", "--repo", REPO, "--json")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert json.loads(deployed.stdout)["deployments"][0]["release_number"] == 2
    blocked = forge("deploy", "web", "1", "--env", "staging", "--repo", REPO)
    assert blocked.returncode == 1
    assert "BLOCKED  source: release 1 is not deployed in dev" in blocked.stdout
    assert "BLOCKED  forward" in blocked.stdout

    back = forge("rollback", "web", "--env", "dev", "--repo", REPO)
    assert back.returncode == 0, back.stderr
    assert "rollback of web release 1 to dev: allowed" in back.stdout
    assert re.search(r"web release 1 to dev is active: GitOps commit [0-9a-f]{40}", back.stdout), back.stdout

    unknown = forge("release", "show", "web", "99", "--repo", REPO)
    assert unknown.returncode == 6
    assert "has no release '99'" in unknown.stderr
