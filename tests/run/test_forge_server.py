"""``forge server``: a signed GitHub push webhook for a repository served by a local ``file://``
remote is executed end to end (fetched into the warm cache, discovered, run); a run whose
repository has no clone URL fails with the reason."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_core.testing.argo import argo_server, workflow_validator
from forge_core.testing.registry import free_port

SECRET = "webhook-s3cret"
FORGE = str(Path(sys.executable).parent / "forge")


def push_payload(repository: str, clone_url: str, before: str, after: str) -> dict[str, Any]:
    """GitHub's push event payload (the fields of its documented example that a push carries)."""
    owner, name = repository.split("/")
    return {
        "ref": "refs/heads/main", "before": before, "after": after,
        "created": False, "deleted": False, "forced": False, "base_ref": None,
        "compare": f"https://github.com/{repository}/compare/{before[:12]}...{after[:12]}",
        "commits": [{"id": after, "distinct": True, "message": "api: health endpoint reports the version",
                     "author": {"name": "Acme Developer", "email": "dev@acme.test"}}],
        "head_commit": {"id": after, "message": "api: health endpoint reports the version"},
        "repository": {"id": 1296269, "name": name, "full_name": repository, "private": False,
                       "owner": {"login": owner, "type": "Organization"}, "default_branch": "main",
                       "clone_url": clone_url},
        "pusher": {"name": "octocat", "email": "octocat@github.example"},
        "sender": {"login": "octocat", "type": "User"},
    }


@pytest.fixture
def remote(example: Path, tmp_path: Path) -> tuple[str, str, str]:
    """The example as a bare repository behind a ``file://`` URL; the URL, HEAD and its parent."""
    bare = tmp_path / "remote" / "monorepo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(example), str(bare)], check=True)
    head, parent = subprocess.run(["git", "-C", str(bare), "rev-parse", "HEAD", "HEAD~1"], check=True,
                                  capture_output=True, text=True).stdout.split()
    return f"file://{bare}", head, parent


@pytest.fixture
def server(
    forge_env: dict[str, str], remote: tuple[str, str, str], tmp_path: Path,
) -> Iterator[tuple[str, dict[str, str]]]:
    with serving(forge_env, remote[0], tmp_path) as running:
        yield running


@contextmanager
def serving(
    forge_env: dict[str, str], url: str | None, tmp_path: Path, **extra: str,
) -> Iterator[tuple[str, dict[str, str]]]:
    """``url``: acme/monorepo's configured remote (FORGE_SERVER__REPOSITORIES); None: none is, the
    clone URL a run names is the only one."""
    port = free_port()
    env = {**forge_env, "FORGE_API__WEBHOOK_SECRET": SECRET, "FORGE_SERVER__POLL_SECONDS": "0.2", **extra}
    if url is not None:
        env["FORGE_SERVER__REPOSITORIES"] = json.dumps({"acme/monorepo": url})
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen([FORGE, "server", "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        until_healthy(base, process, log)
        yield base, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def until_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the server's health endpoint; its log when it exits or does not come up."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"forge server did not start: {log.read_text()}"
        time.sleep(0.2)


def admin_token(env: dict[str, str]) -> str:
    made = subprocess.run([FORGE, "token", "create", "--role", "admin"], env=env, capture_output=True, text=True,
                          check=True)
    return made.stdout.strip()


def deliver(base: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{base}/v1/webhooks/github", content=body, timeout=30, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": signature, "Content-Type": "application/json"})


def until_closed(base: str, token: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = httpx.get(f"{base}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"},
                                        timeout=10).json()
        if run["status"] in {"success", "failed", "cancelled"}:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}"
        time.sleep(0.5)


def tasks_of(run: dict[str, Any]) -> dict[str, str]:
    return {task["key"]: task["status"] for phase in run["phases"] for task in phase["tasks"]}


def test_a_signed_push_is_fetched_from_its_remote_and_run(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str],
) -> None:
    base, env = server
    url, head, parent = remote
    created = deliver(base, push_payload("acme/monorepo", url, parent, head))
    assert created.status_code == 201, created.text
    run = until_closed(base, admin_token(env), created.json()["id"])
    assert run["status"] == "success", run.get("error")
    assert run["commit_sha"] == head and run["branch"] == "main"
    tasks = tasks_of(run)
    assert tasks["api/test"] == "success"
    assert set(tasks.values()) == {"success"}


def test_a_signed_push_of_a_release_tag_is_released_and_deployed_to_the_first_environment(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str], tmp_path: Path,
) -> None:
    """A tag push (GitHub's payload: ``ref`` is the tag, no branch) goes as far as `forge run`
    takes it: the release, and its auto-deployment to dev in the embedded GitOps repository, for
    the pusher (the auto-deployment rules judge them; the commit names them)."""
    base, env = server
    url, head, parent = remote
    payload = {**push_payload("acme/monorepo", url, parent, head), "ref": "refs/tags/api/v1.2.0"}
    created = deliver(base, payload)
    assert created.status_code == 201, created.text
    token = admin_token(env)
    run = until_closed(base, token, created.json()["id"])
    assert run["status"] == "success", run.get("error")
    assert run["tag"] == "api/v1.2.0"
    auth = {"Authorization": f"Bearer {token}"}
    release = httpx.get(f"{base}/v1/releases/acme/monorepo/api/1", headers=auth, timeout=10).json()
    assert release["commit_sha"] == head and release["oci_digest"].startswith("sha256:")
    assert "1.2.0" in {a["alias"] for a in release["aliases"]}
    history = httpx.get(f"{base}/v1/deployments/dev/acme/monorepo/api/history", headers=auth, timeout=10).json()
    (deployment,) = history["deployments"]
    # the record names who made it through the API (the server's own token); the commit, whose push it was
    assert (deployment["status"], deployment["deployed_by"]) == ("active", "forge-server")
    gitops = Path(env["FORGE_STATE_DIR"]) / "gitops.git"
    landed = subprocess.run(["git", "-C", str(gitops), "log", "-1", "--format=%H%n%s", "main"], check=True,
                            capture_output=True, text=True).stdout.split("\n")
    assert landed[0] == deployment["gitops_commit_sha"]
    assert landed[1] == "deploy dev: api #1 (by octocat)"


def test_the_clone_url_the_webhook_names_is_kept_with_the_run_and_fetched_from(
    forge_env: dict[str, str], remote: tuple[str, str, str], tmp_path: Path,
) -> None:
    """No remote configured for the repository: the push's ``repository.clone_url`` is where it
    comes from, and the run's record says so."""
    url, head, parent = remote
    with serving(forge_env, None, tmp_path) as (base, env):
        created = deliver(base, push_payload("acme/monorepo", url, parent, head))
        assert created.status_code == 201, created.text
        assert created.json()["clone_url"] == url
        run = until_closed(base, admin_token(env), created.json()["id"])
    assert run["status"] == "success", run.get("error")
    assert run["clone_url"] == url
    assert tasks_of(run)["api/test"] == "success"


def test_a_finished_run_re_run_through_the_api_is_executed_again_as_its_next_attempt(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str],
) -> None:
    base, env = server
    url, head, parent = remote
    created = deliver(base, push_payload("acme/monorepo", url, parent, head))
    assert created.status_code == 201, created.text
    token = admin_token(env)
    first = until_closed(base, token, created.json()["id"])
    assert first["status"] == "success", first.get("error")
    assert first["driver"].endswith("/forge-server")  # the server held the run's lease
    rerun = httpx.post(f"{base}/v1/runs/{first['id']}/rerun", json={"only_failed": False}, timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    assert rerun.status_code == 201, rerun.text
    second = until_closed(base, token, first["id"])
    assert (second["attempt"], second["status"]) == (2, "success"), second.get("error")
    assert set(tasks_of(second).values()) == {"success"}
    ids = {t["id"] for p in second["phases"] for t in p["tasks"]}
    assert ids.isdisjoint(t["id"] for p in first["phases"] for t in p["tasks"])  # every task ran again
    assert [(a["number"], a["status"]) for a in second["attempts"]] == [(1, "success")]


def test_a_run_naming_no_clone_url_fails_with_the_reason(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str],
) -> None:
    base, env = server
    _, head, _ = remote
    token = admin_token(env)
    created = httpx.post(f"{base}/v1/runs", headers={"Authorization": f"Bearer {token}"}, timeout=10, json={
        "repository": "acme/unknown", "commit_sha": head, "branch": "main", "triggered_by": "t"})
    assert created.status_code == 201, created.text
    run = until_closed(base, token, created.json()["id"], timeout=60)
    assert run["status"] == "failed"
    assert run["error"].startswith("cannot start the run: FORGE_SERVER__REPOSITORIES: no clone URL for repository "
                                   "acme/unknown: the run names none")
    assert run["phases"] == []


def test_a_push_whose_remote_cannot_be_fetched_fails_with_the_reason(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str], tmp_path: Path,
) -> None:
    base, env = server
    _, head, parent = remote
    missing = f"file://{tmp_path / 'nowhere' / 'unknown.git'}"
    created = deliver(base, push_payload("acme/unknown", missing, parent, head))
    assert created.status_code == 201, created.text
    run = until_closed(base, admin_token(env), created.json()["id"], timeout=120)
    assert run["status"] == "failed"
    assert run["error"].startswith("discovery: "), run["error"]
    assert "unknown.git" in run["error"]
    assert run["phases"] == []


def test_a_clone_url_carrying_a_password_is_refused_without_echoing_it(
    server: tuple[str, dict[str, str]], remote: tuple[str, str, str],
) -> None:
    base, _ = server
    _, head, parent = remote
    refused = deliver(base, push_payload("acme/monorepo", "https://bot:hunter2-secret@git.example/a.git",
                                         parent, head))
    assert refused.status_code == 400, refused.text
    assert "clone_url" in refused.text and "password" in refused.text
    assert "hunter2-secret" not in refused.text


def test_with_the_argo_orchestrator_the_run_is_submitted_once_and_a_cancel_stops_its_workflow(
    forge_env: dict[str, str], remote: tuple[str, str, str], tmp_path: Path,
) -> None:
    url, head, parent = remote
    validate = workflow_validator(Path("/work/shared/schemas/argo-workflows/schema.json"))
    with argo_server("argo-token", validate) as argo, serving(
        forge_env, url, tmp_path, FORGE_ORCHESTRATOR__KIND="argo", FORGE_ORCHESTRATOR__ARGO__URL=argo.url,
        FORGE_ORCHESTRATOR__ARGO__TOKEN="argo-token", FORGE_ORCHESTRATOR__ARGO__POLL_INTERVAL="0.2",
    ) as (base, env):
        created = deliver(base, push_payload("acme/monorepo", url, parent, head))
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        name = f"forge-run-{run_id}"
        argo.wait_for(lambda: ("forge", name) in argo.workflows, timeout=120)  # after discovery, a valid Workflow
        argo.set_status(name, {"phase": "Running"})
        token = admin_token(env)
        cancelled = httpx.delete(f"{base}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert cancelled.status_code == 204
        argo.wait_for(lambda: argo.workflows[("forge", name)]["spec"].get("shutdown") == "Stop", timeout=30)
        argo.set_status(name, {"phase": "Failed", "message": "Stopped with strategy 'Stop'"})
        run = until_closed(base, token, run_id, timeout=30)
        assert run["status"] == "cancelled"
        assert [c for c in argo.calls if c[0] == "POST"] == [("POST", "/api/v1/workflows/forge")]
        workflow = argo.workflow(name)
        assert workflow is not None
        job = json.loads(next(t for t in workflow["spec"]["templates"] if t["name"] == "run")["dag"]["tasks"][0]
                         ["arguments"]["parameters"][0]["value"])
        assert job["payload"] == {"repository": url, "commit": head}


def test_sigterm_stops_forge_server_like_ctrl_c_and_its_running_run_is_recorded_cancelled(
    forge_env: dict[str, str], example: Path, commit_change: Any, tmp_path: Path,
) -> None:
    commit_change(
        example, "services/api/.forge/project.cue",
        'target: "python3 -m unittest discover -s tests", timeout: "2m"',
        'target: "python3 -c \\"import time; time.sleep(60)\\"", timeout: "2m"',
    )
    bare = tmp_path / "slow" / "monorepo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(example), str(bare)], check=True)
    head, parent = subprocess.run(["git", "-C", str(bare), "rev-parse", "HEAD", "HEAD~1"], check=True,
                                  capture_output=True, text=True).stdout.split()
    port = free_port()
    env = {**forge_env, "FORGE_API__WEBHOOK_SECRET": SECRET, "FORGE_SERVER__POLL_SECONDS": "0.2",
           "FORGE_SERVER__REPOSITORIES": json.dumps({"acme/monorepo": f"file://{bare}"})}
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen([FORGE, "server", "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        until_healthy(base, process, log)
        created = deliver(base, push_payload("acme/monorepo", f"file://{bare}", parent, head))
        assert created.status_code == 201, created.text
        run_id, token = created.json()["id"], admin_token(env)
        deadline = time.monotonic() + 120
        while True:
            run = httpx.get(f"{base}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}).json()
            if tasks_of(run).get("api/test") == "running":
                break
            assert time.monotonic() < deadline, f"the slow task never started: {run}"
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, 130), log.read_text()  # as after Ctrl-C
    finally:
        if process.poll() is None:
            process.kill()
    listing = subprocess.run([FORGE, "runs", "--json"], env=env, capture_output=True, text=True, check=True)
    [closed] = [r for r in json.loads(listing.stdout)["runs"] if r["id"] == run_id]
    assert (closed["status"], closed["error"]) == ("cancelled", "the server stopped")
