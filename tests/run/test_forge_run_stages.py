"""`forge run` all the way on the example monorepo — artifacts, release, auto-deployment to dev in
the embedded GitOps repository, rendered back by `forge cmp generate` — then the default policy
through the CLI on one machine: staging, production refused until another person approves,
status, rollback, and an atomic promotion of two projects in one GitOps commit."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import platform_key
from forge_core.api.app import create_app
from forge_core.domain.gitops import ReleasePointer, parse_release_pointer
from forge_core.plugin.host import load_plugins
from forge_core.settings import load_settings

Forge = Callable[..., subprocess.CompletedProcess[str]]
REPO = "local/acme"
FOLDER = "environments/{env}/acme-{project}/release.yaml"
DOCS_DEPLOY = '\ndeploy: resources: [{apiVersion: "v1", kind: "ConfigMap", metadata: name: "docs", data: site: "on"}]\n'


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _pointer(gitops: Path, env: str, project: str, rev: str = "main") -> ReleasePointer:
    path = FOLDER.format(env=env, project=project)
    return parse_release_pointer(_git("-C", str(gitops), "show", f"{rev}:{path}"), path)


def _commits(gitops: Path) -> list[str]:
    return _git("-C", str(gitops), "rev-list", "main").split()


def _approve_as(state: Path, monkeypatch: pytest.MonkeyPatch, person: str, release_id: str, env: str) -> None:
    """Another person's approval, through the same API (a token of theirs)."""
    monkeypatch.setenv("FORGE_STATE_DIR", str(state))
    settings = load_settings()
    token = platform_key(settings).mint(person, roles=["admin"])
    with TestClient(create_app(settings, load_plugins(settings.plugins))) as client:
        response = client.post("/v1/approvals", headers={"Authorization": f"Bearer {token}"},
                               json={"release_id": release_id, "environment": env, "justification": "CAB-7"})
    assert response.status_code == 201, response.text


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_forge_run_releases_and_deploys_and_the_cli_promotes(
    example: Path, forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    commit_change: Callable[[Path, str, str, str], None],
) -> None:
    env: dict[str, str] = forge.env  # type: ignore[attr-defined]
    state = Path(env["FORGE_STATE_DIR"])
    gitops = state / "gitops.git"
    out = _ok(forge("run", str(example)))
    assert "release and deployment stages skipped" not in out
    assert re.search(r"api release 1 +aliases 1, api/v1\.2\.0, 1\.2\.0", out), out
    landed = re.search(r"deployed to dev: GitOps commit ([0-9a-f]{40}) in (\S+) \(branch main\)", out)
    assert landed is not None, out
    assert Path(landed.group(2)) == gitops and _commits(gitops)[0] == landed.group(1)
    assert f"pointer: {FOLDER.format(env='dev', project='api')}" in out
    assert f"FORGE_STATE_DIR={state} forge cmp generate" in out
    head = _git("-C", str(example), "rev-parse", "HEAD").strip()
    first = _pointer(gitops, "dev", "api")
    assert (first.release, first.release_number, first.environment) == (head, 1, "dev")

    # the printed command renders it: images pinned by digest, byte-identical twice
    clone = tmp_path / "gitops"
    _git("clone", "-q", "-b", "main", str(gitops), str(clone))
    folder = clone / "environments/dev/acme-api"
    generate = [str(Path(sys.executable).parent / "forge"), "cmp", "generate"]
    one = subprocess.run(generate, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    two = subprocess.run(generate, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout and one.stdout.strip()
    images = re.findall(r"image: (\S+)", one.stdout)
    assert images and all(re.fullmatch(r"registry\.acme\.test/acme/api:1\.2\.0@sha256:[0-9a-f]{64}", i)
                          for i in images), images

    # the default policy on one machine: staging lands
    staged = _ok(forge("promote", "api", "--to", "staging", "--repo", REPO))
    assert "promotion of api release 1 to staging: allowed" in staged
    assert re.search(r"is active: GitOps commit ([0-9a-f]{40})", staged), staged
    assert _pointer(gitops, "staging", "api").release == head

    refused = forge("promote", "api", "--to", "production", "--repo", REPO)
    assert refused.returncode == 1
    assert "refused: rule `approvals`" in refused.stderr
    assert "production" not in _git("-C", str(gitops), "ls-tree", "-r", "--name-only", "main")

    release = _ok(forge("release", "show", "api", "1", "--repo", REPO, "--json"))
    release_id = json.loads(release)["id"]
    _approve_as(state, monkeypatch, "carol", release_id, "production")
    accepted = _ok(forge("promote", "api", "--to", "production", "--repo", REPO))
    assert "is active: GitOps commit" in accepted
    assert _pointer(gitops, "production", "api").deployed_by == getpass.getuser()

    matrix = _ok(forge("status", "--repo", REPO, "--history"))
    for env in ("dev", "staging", "production"):
        assert env in matrix
    assert "#1 since" in matrix and "superseded" not in matrix.split("history")[0]
    status = json.loads(_ok(forge("status", "--repo", REPO, "--history", "--json")))
    assert {e: d["status"] for e, d in status["matrix"]["api"].items()} == {
        "dev": "active", "staging": "active", "production": "active"}
    assert all(d["gitops_commit_sha"] for d in status["history"])

    # a second commit on main: api release 2 and docs release 1, auto-deployed in one commit
    (example / "docs/.forge/project.cue").write_text((example / "docs/.forge/project.cue").read_text() + DOCS_DEPLOY)
    commit_change(example, "services/api/CHANGELOG.md", "1.2.0:", "1.2.0 (again):")
    before = len(_commits(gitops))
    second = _ok(forge("run", str(example)))
    assert "api release 2" in second and "docs release 1" in second, second
    assert len(_commits(gitops)) == before + 1  # both pointers, one commit
    new_head = _git("-C", str(example), "rev-parse", "HEAD").strip()
    assert _pointer(gitops, "dev", "api").release == new_head
    assert _pointer(gitops, "dev", "docs").release == new_head

    # two projects promoted together: one GitOps commit holding both pointers
    before = _commits(gitops)
    together = _ok(forge("promote", "api", "docs", "--to", "staging", "--repo", REPO))
    shas = set(re.findall(r"is active: GitOps commit ([0-9a-f]{40})", together))
    after = _commits(gitops)
    assert len(after) == len(before) + 1 and shas == {after[0]}, together
    changed = _git("-C", str(gitops), "show", "--name-only", "--format=", after[0]).split()
    assert sorted(changed) == [FOLDER.format(env="staging", project=p) for p in ("api", "docs")]
    assert _pointer(gitops, "staging", "api").release_number == 2

    # rollback: dev's api pointer is release 1's again
    rolled = _ok(forge("rollback", "api", "--env", "dev", "--repo", REPO))
    assert "rollback of api release 1 to dev: allowed" in rolled
    back = _pointer(gitops, "dev", "api")
    assert (back.release, back.release_number) == (first.release, first.release_number)
