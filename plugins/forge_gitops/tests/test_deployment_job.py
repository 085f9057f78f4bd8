"""The deployment job against a real git remote (git http-backend) and the real Platform API."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ConfigurationError,
    Job,
    JobContext,
    JobResult,
    JobStatus,
    SecretRef,
    WorkWithdrawn,
    parse_release_pointer,
)
from forge_core.testing.platform import PlatformApi, job_context, secret_resolver
from forge_gitops.handler import DeploymentHandler
from forge_gitops.settings import GitOpsSettings
from forge_gitops.testing import TOKEN, GitOpsRemote

REPOSITORY = "acme/shop"


def commit_of(n: int) -> str:
    return f"{n:040x}"


class Recording:
    """The worker's deployment reporter, with every call it passed on written down."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def create_deployment(self, release_id: str, environment: str, *, status: str = "pending") -> dict[str, Any]:
        created: dict[str, Any] = self.inner.create_deployment(release_id, environment, status=status)
        self.calls.append(("create", created["status"]))
        return created

    def set_deployment_status(self, deployment_id: str, status: str, **fields: Any) -> dict[str, Any]:
        changed: dict[str, Any] = self.inner.set_deployment_status(deployment_id, status, **fields)
        self.calls.append(("status", changed["status"]))
        return changed


def context(tmp_path: Path, deployments: Any = None, log: list[str] | None = None, **fields: Any) -> JobContext:
    lines = log if log is not None else []
    return job_context(tmp_path / "cache", log=lines.append, deployments=deployments, **fields)


def job(environment: str, *entries: dict[str, Any], actor: str = "alice", job_id: str | None = None) -> Job:
    payload = {"environment": environment, "actor": actor, "deployments": list(entries)}
    return Job(id=job_id or uuid.uuid4().hex, type="deployment", run_id="run-1", payload=payload)


def entry(release: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"repository": release["repository"], "project": release["project"],
            "release_commit": release["commit_sha"], "release_number": release["release_number"],
            "release_id": release["id"], **fields}


def settings(remote: GitOpsRemote, **fields: Any) -> GitOpsSettings:
    values: dict[str, Any] = {"url": remote.url, "backoff_seconds": 0.01, "backoff_max_seconds": 0.2, **fields}
    return GitOpsSettings(**values)


def history(api: PlatformApi, environment: str, project: str) -> list[tuple[str, str | None, str]]:
    answer = api.get(f"/v1/deployments/{environment}/{REPOSITORY}/{project}/history").json()
    return [(d["status"], d["gitops_commit_sha"], d["release_id"]) for d in answer["deployments"]]


def test_one_deployment_lands_and_supersedes_the_previous(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    first = forge_platform.create_release(REPOSITORY, "api", commit_of(1))
    second = forge_platform.create_release(REPOSITORY, "api", commit_of(2))
    reporter = Recording(forge_platform.deployments())
    handler = DeploymentHandler(settings(gitops_remote))
    one = handler.handle(job("dev", entry(first)), context(tmp_path, reporter))
    assert one.status is JobStatus.SUCCESS, one.error
    two = handler.handle(job("dev", entry(second), actor="bob"), context(tmp_path, reporter))
    assert two.status is JobStatus.SUCCESS, two.error
    assert reporter.calls == [("create", "pending"), ("status", "active")] * 2

    path = "environments/dev/shop-api/release.yaml"
    pointer = parse_release_pointer(gitops_remote.file(path), path)
    assert (pointer.environment, pointer.repository, pointer.project) == ("dev", REPOSITORY, "api")
    assert (pointer.release, pointer.release_number, pointer.deployed_by) == (commit_of(2), 2, "bob")
    assert pointer.deployed_at is not None
    head = gitops_remote.history()[0]
    assert two.output["gitops_commit"] == head and one.output["gitops_commit"] == gitops_remote.history()[1]
    assert gitops_remote.message(head).splitlines()[0] == "deploy dev: api #2 (by bob)"
    assert commit_of(2) in gitops_remote.message(head)
    assert history(forge_platform, "dev", "api") == [
        ("active", head, second["id"]), ("superseded", one.output["gitops_commit"], first["id"])]
    # The worker keeps one clone of the remote for its next deployment; no throwaway one is left.
    kept = sorted(p.name for p in (tmp_path / "cache" / "gitops").iterdir())
    assert len(kept) == 2 and kept[0].startswith("clone-") and kept[1] == f"{kept[0]}.lock"


def deploy_first(handler: DeploymentHandler, api: PlatformApi, cache: Path) -> None:
    """Release 1 of ``api`` deployed to dev through ``handler`` (its clone then knows the tip)."""
    first = api.create_release(REPOSITORY, "api", commit_of(1))
    landed = handler.handle(job("dev", entry(first)), context(cache))
    assert landed.status is JobStatus.SUCCESS, landed.error


def pack_requests(remote: GitOpsRemote) -> list[str]:
    """Which git service each request since the last call asked for, and how."""
    seen = [f"{method} {'fetch' if 'upload-pack' in path else 'push'}" for method, path, _ in remote.requests]
    remote.requests.clear()
    return seen


def test_a_worker_alone_at_the_remote_pushes_without_fetching_first(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    handler = DeploymentHandler(settings(gitops_remote))
    deploy_first(handler, forge_platform, tmp_path)
    assert "GET fetch" in pack_requests(gitops_remote)  # a new clone fetches

    second = forge_platform.create_release(REPOSITORY, "api", commit_of(2))
    landed = handler.handle(job("dev", entry(second)), context(tmp_path))
    assert landed.status is JobStatus.SUCCESS, landed.error
    # The clone's tip is the remote's (its own last push): the push is the whole exchange.
    assert pack_requests(gitops_remote) == ["GET push", "POST push"]
    assert landed.output["attempts"] == 1 and landed.output["gitops_commit"] == gitops_remote.history()[0]


def test_a_clone_behind_the_remote_is_refused_unsent_then_fetches_in_the_same_attempt(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    mine, other = DeploymentHandler(settings(gitops_remote)), DeploymentHandler(settings(gitops_remote))
    releases = [forge_platform.create_release(REPOSITORY, project, commit_of(n))
                for n, project in enumerate(["api", "web", "api"], start=1)]
    assert mine.handle(job("dev", entry(releases[0])), context(tmp_path / "a")).status is JobStatus.SUCCESS
    assert other.handle(job("dev", entry(releases[1])), context(tmp_path / "b")).status is JobStatus.SUCCESS
    pack_requests(gitops_remote)

    landed = mine.handle(job("dev", entry(releases[2])), context(tmp_path / "a"))
    assert landed.status is JobStatus.SUCCESS, landed.error
    # Refused from the advertisement (no pack sent), fetched, pushed: one attempt, no backoff.
    seen = pack_requests(gitops_remote)
    assert seen[0] == "GET push" and seen[-2:] == ["GET push", "POST push"] and seen.count("POST push") == 1
    assert seen[1:-2] == ["GET fetch", "POST fetch"]  # protocol 0 (the default): refs, then the pack
    assert landed.output["attempts"] == 1
    head = gitops_remote.history()[0]
    assert landed.output["gitops_commit"] == head and not gitops_remote.git("rev-list", "--merges", "main").strip()
    assert parse_release_pointer(gitops_remote.file("environments/dev/shop-web/release.yaml"),
                                 "environments/dev/shop-web/release.yaml").release == commit_of(2)  # kept
    assert parse_release_pointer(gitops_remote.file("environments/dev/shop-api/release.yaml"),
                                 "environments/dev/shop-api/release.yaml").release == commit_of(3)


def test_fetches_speak_the_configured_protocol(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    deploy_first(DeploymentHandler(settings(gitops_remote, fetch_protocol=2)), forge_platform, tmp_path)
    # Protocol 2: capabilities, then ls-refs, then the fetch proper.
    assert [r for r in pack_requests(gitops_remote) if r.endswith("fetch")] == ["GET fetch", "POST fetch", "POST fetch"]


def test_a_deleted_branch_is_never_recreated_from_a_clones_old_tip(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    handler = DeploymentHandler(settings(gitops_remote, push_attempts=2))
    deploy_first(handler, forge_platform, tmp_path)
    gitops_remote.git("update-ref", "-d", "refs/heads/main")

    second = forge_platform.create_release(REPOSITORY, "api", commit_of(2))
    failed = handler.handle(job("dev", entry(second)), context(tmp_path))
    assert failed.status is JobStatus.FAILED
    assert "branch 'main' does not exist in the GitOps repository" in str(failed.error)
    assert gitops_remote.git("for-each-ref", "refs/heads").strip() == ""  # the lease refused it


def test_a_kept_clone_with_many_packs_is_repacked_and_keeps_working(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    import subprocess

    handler = DeploymentHandler(settings(gitops_remote))
    deploy_first(handler, forge_platform, tmp_path)
    (clone,) = [p for p in (tmp_path / "cache" / "gitops").iterdir() if p.is_dir()]
    for n in range(55):  # as 55 refused commits would leave: packs of objects no ref reaches
        subprocess.run(["git", "-C", str(clone), "pack-objects", "-q", str(clone / "objects" / "pack" / "pack")],
                       input=subprocess.run(["git", "-C", str(clone), "hash-object", "-w", "--stdin"],
                                            input=f"orphan {n}\n".encode(), capture_output=True, check=True).stdout,
                       capture_output=True, check=True)
    assert len(list((clone / "objects" / "pack").glob("*.pack"))) > 50

    second = forge_platform.create_release(REPOSITORY, "api", commit_of(2))
    landed = handler.handle(job("dev", entry(second)), context(tmp_path))
    assert landed.status is JobStatus.SUCCESS, landed.error
    assert len(list((clone / "objects" / "pack").glob("*.pack"))) == 1
    assert subprocess.run(["git", "-C", str(clone), "count-objects", "-v"], capture_output=True, text=True,
                          check=True).stdout.split("\n")[0] == "count: 0"  # nothing loose: orphans pruned
    third = forge_platform.create_release(REPOSITORY, "api", commit_of(3))
    again = handler.handle(job("dev", entry(third)), context(tmp_path))
    assert again.status is JobStatus.SUCCESS and again.output["gitops_commit"] == gitops_remote.history()[0]


def test_twenty_concurrent_deployments_all_land_without_force(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    releases = [forge_platform.create_release(REPOSITORY, f"svc{n}", commit_of(100 + n)) for n in range(20)]
    # Four workers (a handler each: its own jobs take turns) of five threads, racing each other;
    # a commit per job (no group commits), so every push is a race.
    workers = [DeploymentHandler(settings(gitops_remote, push_attempts=60, backoff_max_seconds=0.5, max_batch=1))
               for _ in range(4)]
    reporter = forge_platform.deployments()
    results: list[JobResult] = []
    start = threading.Barrier(20)

    def deploy(n: int, release: dict[str, Any]) -> None:
        start.wait()
        results.append(workers[n % 4].handle(job("dev", entry(release)), context(tmp_path, reporter)))

    threads = [threading.Thread(target=deploy, args=(n, r)) for n, r in enumerate(releases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(results) == 20
    assert [r.error for r in results if r.status is not JobStatus.SUCCESS] == []
    assert max(r.output["attempts"] for r in results) > 1  # the workers did race

    commits = gitops_remote.history()
    assert len(commits) == 21  # the initial commit and one per deployment: none lost
    assert gitops_remote.git("rev-list", "--merges", "main").strip() == ""
    for old, new in gitops_remote.reflog()[1:]:  # every update of main moved it forward by its own commit
        assert gitops_remote.git("rev-parse", f"{new}^").strip() == old
    assert sorted(r.output["gitops_commit"] for r in results) == sorted(commits[:20])
    for release in releases:
        path = f"environments/dev/shop-{release['project']}/release.yaml"
        assert parse_release_pointer(gitops_remote.file(path), path).release == release["commit_sha"]
        assert history(forge_platform, "dev", release["project"])[0][0] == "active"


def test_jobs_waiting_for_one_worker_land_in_one_group_commit(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    releases = [forge_platform.create_release(REPOSITORY, f"svc{n}", commit_of(200 + n)) for n in range(8)]
    handler = DeploymentHandler(settings(gitops_remote, batch_linger_seconds=0.5))
    reporter = forge_platform.deployments()
    results: list[JobResult] = []
    start = threading.Barrier(len(releases))

    def deploy(n: int, release: dict[str, Any]) -> None:
        start.wait()
        actor = "bob" if n % 2 else "alice"
        results.append(handler.handle(job("dev", entry(release), actor=actor), context(tmp_path, reporter)))

    threads = [threading.Thread(target=deploy, args=(n, r)) for n, r in enumerate(releases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r.error for r in results if r.status is not JobStatus.SUCCESS] == []
    head, _initial = gitops_remote.history()
    assert {r.output["gitops_commit"] for r in results} == {head}
    assert {r.output["batch"] for r in results} == {8}
    assert len(gitops_remote.changed(head)) == 8
    subject = gitops_remote.message(head).splitlines()[0]
    for n, release in enumerate(releases):  # each job's project, release number, environment and actor
        assert f"deploy dev: svc{n} #1 (by {'bob' if n % 2 else 'alice'})" in subject
        assert f"{release['commit_sha']} -> environments/dev/shop-svc{n}/release.yaml" in gitops_remote.message(head)
        assert history(forge_platform, "dev", f"svc{n}") == [("active", head, release["id"])]


def test_two_jobs_for_one_pointer_never_share_a_commit(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    first = forge_platform.create_release(REPOSITORY, "api", commit_of(31))
    second = forge_platform.create_release(REPOSITORY, "api", commit_of(32))
    handler = DeploymentHandler(settings(gitops_remote, batch_linger_seconds=0.3))
    reporter = forge_platform.deployments()
    results: dict[str, JobResult] = {}
    start = threading.Barrier(2)

    def deploy(release: dict[str, Any]) -> None:
        start.wait()
        results[release["id"]] = handler.handle(job("dev", entry(release)), context(tmp_path, reporter))

    threads = [threading.Thread(target=deploy, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r.status is JobStatus.SUCCESS for r in results.values())
    later, earlier, _initial = gitops_remote.history()
    landed_last = next(i for i, r in results.items() if r.output["gitops_commit"] == later)
    landed_first = next(i for i, r in results.items() if r.output["gitops_commit"] == earlier)
    assert {r.output["batch"] for r in results.values()} == {1}
    # The pointer holds the release that landed last, and the states follow the landing order.
    path = "environments/dev/shop-api/release.yaml"
    last_release = first if landed_last == first["id"] else second
    assert parse_release_pointer(gitops_remote.file(path), path).release == last_release["commit_sha"]
    assert history(forge_platform, "dev", "api") == [
        ("active", later, landed_last), ("superseded", earlier, landed_first)]


def test_a_withdrawn_job_in_a_group_commit_does_not_hold_back_the_others(
    tmp_path: Path, gitops_remote: GitOpsRemote
) -> None:
    handler = DeploymentHandler(settings(gitops_remote, batch_linger_seconds=0.3))
    withdrawn = context(tmp_path, stop=threading.Event())
    withdrawn.stop.set()
    results: list[JobResult] = []
    start = threading.Barrier(2)

    def deploy(n: int, ctx: JobContext) -> None:
        start.wait()
        release = {"repository": REPOSITORY, "project": f"p{n}", "commit_sha": commit_of(40 + n),
                   "release_number": 1, "id": f"r{n}"}
        results.append(handler.handle(job("dev", entry(release)), ctx))

    threads = [threading.Thread(target=deploy, args=(n, c)) for n, c in enumerate((withdrawn, context(tmp_path)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r.status for r in results] == [JobStatus.SUCCESS] * 2
    assert sorted(gitops_remote.changed(gitops_remote.history()[0])) == [
        "environments/dev/shop-p0/release.yaml", "environments/dev/shop-p1/release.yaml"]


def test_two_projects_land_in_one_commit_or_not_at_all(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    api = forge_platform.create_release(REPOSITORY, "api", commit_of(3))
    web = forge_platform.create_release(REPOSITORY, "web", commit_of(4))
    handler = DeploymentHandler(settings(gitops_remote))
    reporter = forge_platform.deployments()
    before = gitops_remote.history()
    bad = dict(entry(web), project="Web_UI")  # not a DNS label: the whole job is refused
    with pytest.raises(ConfigurationError) as refused:
        handler.handle(job("staging", entry(api), bad), context(tmp_path, reporter))
    assert refused.value.where is not None and refused.value.where.startswith("payload.deployments[1]")
    assert gitops_remote.history() == before
    assert api["id"] not in str(forge_platform.get(f"/v1/deployments/staging/{REPOSITORY}/api/history").json())

    both = handler.handle(job("staging", entry(api), entry(web), actor="carol"), context(tmp_path, reporter))
    assert both.status is JobStatus.SUCCESS, both.error
    commit = gitops_remote.history()[0]
    assert gitops_remote.history()[1:] == before
    assert sorted(gitops_remote.changed(commit)) == [
        "environments/staging/shop-api/release.yaml", "environments/staging/shop-web/release.yaml"]
    assert gitops_remote.message(commit).splitlines()[0] == "deploy staging: api #1, web #1 (by carol)"
    for project in ("api", "web"):
        assert history(forge_platform, "staging", project)[0][:2] == ("active", commit)


def test_a_push_that_keeps_failing_fails_the_deployments_with_the_reason(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    old = forge_platform.create_release(REPOSITORY, "api", commit_of(5))
    new = forge_platform.create_release(REPOSITORY, "api", commit_of(6))
    handler = DeploymentHandler(settings(gitops_remote, push_attempts=3))
    reporter = forge_platform.deployments()
    assert handler.handle(job("dev", entry(old)), context(tmp_path, reporter)).status is JobStatus.SUCCESS
    landed = gitops_remote.history()
    gitops_remote.decline_pushes("pushes are frozen for the audit")
    lines: list[str] = []
    failed = handler.handle(job("dev", entry(new)), context(tmp_path, reporter, lines))
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert "gave up after 3 attempts" in failed.error and "pushes are frozen for the audit" in failed.error
    assert len([line for line in lines if "did not land" in line]) == 3
    assert gitops_remote.history() == landed
    states = history(forge_platform, "dev", "api")
    assert [s[0] for s in states] == ["failed", "active"] and states[1][2] == old["id"]
    reason = forge_platform.get(f"/v1/deployments/dev/{REPOSITORY}/api/history").json()["deployments"][0]["reason"]
    assert "pushes are frozen for the audit" in reason
    # The failed publish's clone is gone (git may have left it broken); only its lock file stays.
    assert [p.suffix for p in (tmp_path / "cache" / "gitops").iterdir()] == [".lock"]

    (gitops_remote.path / "hooks" / "pre-receive").unlink()  # the remote accepts again: a fresh job lands
    again = handler.handle(job("dev", entry(new)), context(tmp_path, reporter))
    assert again.status is JobStatus.SUCCESS, again.error
    assert gitops_remote.history()[1:] == landed


def test_a_remote_that_is_down_fails_after_the_bounded_retries(tmp_path: Path) -> None:
    handler = DeploymentHandler(GitOpsSettings(url="http://127.0.0.1:9/gitops.git", push_attempts=2,
                                               backoff_seconds=0.01))
    release = {"repository": REPOSITORY, "project": "api", "commit_sha": commit_of(7), "release_number": 1,
               "id": str(uuid.uuid4())}
    result = handler.handle(job("dev", entry(release)), context(tmp_path))
    assert result.status is JobStatus.FAILED and result.error is not None
    assert "gave up after 2 attempts" in result.error and "127.0.0.1" in result.error


def test_a_redelivered_job_makes_one_commit(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    release = forge_platform.create_release(REPOSITORY, "api", commit_of(8))
    reporter = forge_platform.deployments()
    pending = reporter.create_deployment(release["id"], "dev")  # the dispatcher's, named in the payload
    delivery = job("dev", entry(release, deployment_id=pending["id"]), job_id="job-once")
    handler = DeploymentHandler(settings(gitops_remote))
    first = handler.handle(delivery, context(tmp_path, reporter))
    second = handler.handle(delivery, context(tmp_path, reporter))
    assert (first.status, second.status) == (JobStatus.SUCCESS, JobStatus.SUCCESS)
    assert (first.output["created"], second.output["created"]) == (True, False)
    assert first.output["gitops_commit"] == second.output["gitops_commit"] == gitops_remote.history()[0]
    assert len(gitops_remote.history()) == 2
    assert history(forge_platform, "dev", "api") == [("active", first.output["gitops_commit"], release["id"])]


def test_an_https_remote_with_a_token_never_shows_it(
    tmp_path: Path, gitops_remote_token: GitOpsRemote, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("GITOPS_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    handler = DeploymentHandler(settings(gitops_remote_token, credentials=SecretRef(provider="env",
                                                                                    path="GITOPS_TOKEN")))
    release = {"repository": REPOSITORY, "project": "api", "commit_sha": commit_of(9), "release_number": 4,
               "id": str(uuid.uuid4())}
    lines: list[str] = []
    configs: list[str] = []

    def log(line: str) -> None:  # called while the job's clone is in use: read what git keeps there
        lines.append(line)
        configs.extend(c.read_text() for c in (tmp_path / "cache" / "gitops").glob("*/config"))

    ctx = job_context(tmp_path / "cache", log=log, secrets=secret_resolver())
    result = handler.handle(job("dev", entry(release)), ctx)
    assert result.status is JobStatus.SUCCESS, result.error
    configs.extend(c.read_text() for c in (tmp_path / "cache" / "gitops").glob("*/config"))  # the kept clone
    assert configs and all(gitops_remote_token.url in c for c in configs)  # the clone's remote: no credentials
    assert not any(TOKEN in c or "extraHeader" in c or "Authorization" in c for c in configs)
    assert gitops_remote_token.history()[0] == result.output["gitops_commit"]
    assert set(gitops_remote_token.authorizations) == {gitops_remote_token.authorizations[0]}  # the token's
    assert all(status != 401 for _, _, status in gitops_remote_token.requests)
    shown = "\n".join([*lines, caplog.text, str(result.model_dump()), gitops_remote_token.url])
    assert TOKEN not in shown
    leftovers = [p for p in tmp_path.joinpath("cache").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leftovers == []


def test_a_remote_rejecting_the_token_is_a_clear_error(
    tmp_path: Path, gitops_remote_token: GitOpsRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-t0ken-at-all"
    monkeypatch.setenv("GITOPS_TOKEN", wrong)
    handler = DeploymentHandler(settings(gitops_remote_token, credentials=SecretRef(provider="env",
                                                                                    path="GITOPS_TOKEN")))
    release = {"repository": REPOSITORY, "project": "api", "commit_sha": commit_of(10), "release_number": 1,
               "id": str(uuid.uuid4())}
    lines: list[str] = []
    result = handler.handle(job("dev", entry(release)), context(tmp_path, log=lines, secrets=secret_resolver()))
    assert result.status is JobStatus.FAILED and result.error is not None
    assert "refused the credentials" in result.error and gitops_remote_token.url in result.error
    assert wrong not in result.error and wrong not in "\n".join(lines)
    assert len(gitops_remote_token.history()) == 1  # nothing landed


def test_the_embedded_repository_is_created_on_first_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    handler = DeploymentHandler(GitOpsSettings(state_dir=state))
    releases = [{"repository": REPOSITORY, "project": f"p{n}", "commit_sha": commit_of(20 + n), "release_number": 1,
                 "id": str(uuid.uuid4())} for n in range(4)]
    results: list[JobResult] = []
    threads = [threading.Thread(target=lambda r=r: results.append(
        handler.handle(job("dev", entry(r)), context(tmp_path)))) for r in releases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r.error for r in results if r.status is not JobStatus.SUCCESS] == []
    bare = GitOpsRemote(url=str(state / "gitops.git"), path=state / "gitops.git")
    assert bare.git("rev-parse", "--is-bare-repository").strip() == "true"
    assert 2 <= len(bare.history()) <= 5  # jobs waiting for the worker's turn share a commit
    assert bare.message(bare.history()[-1]).strip() == "Initialise the GitOps repository"
    assert sorted(bare.files()) == [f"environments/dev/shop-p{n}/release.yaml" for n in range(4)]


SSH_STAND_IN = """#!/bin/sh
# Speaks ssh's interface to git (ssh [options] host command): checks the key it is given, then runs
# the git command locally, as sshd would on the remote host.
key=""
while [ $# -gt 1 ]; do
  case "$1" in
    -i) key="$2"; shift 2;;
    -o|-p) shift 2;;
    *) host="$1"; shift;;
  esac
done
mode=$(stat -c %a "$key")
echo "key=$key mode=$mode first=$(head -n1 "$key")" >> "{log}"
[ "$mode" = "600" ] || {{ echo "bad key mode $mode" >&2; exit 255; }}
exec sh -c "$1"
"""


def test_an_ssh_remote_gets_the_key_as_a_private_file_deleted_after(
    tmp_path: Path, gitops_remote: GitOpsRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1rZXktbWF0ZXJpYWw=\n-----END OPENSSH PRIVATE KEY-----\n"
    monkeypatch.setenv("GITOPS_KEY", key)
    log = tmp_path / "ssh.log"
    stand_in = tmp_path / "fake-ssh"
    stand_in.write_text(SSH_STAND_IN.format(log=log))
    stand_in.chmod(0o755)
    handler = DeploymentHandler(GitOpsSettings(
        url=f"ssh://git@gitops.test{gitops_remote.path}", ssh_command=str(stand_in), backoff_seconds=0.01,
        credentials=SecretRef(provider="env", path="GITOPS_KEY")))
    release = {"repository": REPOSITORY, "project": "api", "commit_sha": commit_of(11), "release_number": 2,
               "id": str(uuid.uuid4())}
    lines: list[str] = []
    result = handler.handle(job("dev", entry(release)), context(tmp_path, log=lines, secrets=secret_resolver()))
    assert result.status is JobStatus.SUCCESS, result.error
    assert gitops_remote.history()[0] == result.output["gitops_commit"]
    used = log.read_text().splitlines()
    assert len(used) >= 2 and all("mode=600 first=-----BEGIN OPENSSH PRIVATE KEY-----" in u for u in used)
    key_files = {Path(u.split()[0].removeprefix("key=")) for u in used}
    assert len(key_files) == 1 and not any(k.exists() for k in key_files)  # deleted after the job
    assert "ZmFrZS1rZXktbWF0ZXJpYWw" not in "\n".join(lines) + str(result.model_dump())


def test_a_withdrawn_job_leaves_its_deployments_pending_for_the_redelivery(
    tmp_path: Path, gitops_remote: GitOpsRemote, forge_platform: PlatformApi
) -> None:
    release = forge_platform.create_release(REPOSITORY, "api", commit_of(12))
    reporter = forge_platform.deployments()
    pending = reporter.create_deployment(release["id"], "dev")
    delivery = job("dev", entry(release, deployment_id=pending["id"]))
    handler = DeploymentHandler(settings(gitops_remote))
    withdrawn = context(tmp_path, reporter, stop=threading.Event())
    withdrawn.stop.set()
    with pytest.raises(WorkWithdrawn):
        handler.handle(delivery, withdrawn)
    assert len(gitops_remote.history()) == 1
    assert history(forge_platform, "dev", "api") == [("pending", None, release["id"])]
    redelivered = handler.handle(delivery, context(tmp_path, reporter))
    assert redelivered.status is JobStatus.SUCCESS, redelivered.error
    assert history(forge_platform, "dev", "api") == [("active", gitops_remote.history()[0], release["id"])]

    made_here = job("dev", entry(release))  # no deployment_id: the job creates its own, and ends it
    with pytest.raises(WorkWithdrawn):
        handler.handle(made_here, withdrawn)
    assert [s[0] for s in history(forge_platform, "dev", "api")] == ["failed", "active"]
