"""Promotions and rollbacks through the API: the default policy, approvals (another person's,
self-approval, expiry, revocation), environments recorded with the run, all-or-none groups,
parallel promotions of one project, and the repository scope."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .conftest import Api, create_run, new_sha, unique_repo


def release(
    api: Api, repository: str, project: str = "svc", *, branch: str | None = "main", tag: str | None = None,
    author: str = "alice", plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A release of a run pushed by ``author`` (a tag release when ``tag`` is given)."""
    sha = new_sha()
    run = create_run(api, repository, sha, triggered_by=author, branch=branch, tag=tag,
                     trigger_type="tag" if tag else "push")
    if plan is not None:
        recorded = api.post(f"/v1/runs/{run['id']}/plan", "worker", json=plan)
        assert recorded.status_code == 201, recorded.text
    trigger = {"trigger_type": "tag", "tag": tag, "branch": branch} if tag else {
        "trigger_type": "branch_push", "branch": branch}
    body = {"repository": repository, "project": project, "commit_sha": sha, "pipeline_run_id": run["id"],
            "trigger": trigger}
    response = api.post("/v1/releases", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def land(api: Api, release_id: str, environment: str) -> None:
    """Stands for the deployment job: the release is active in ``environment``."""
    body = {"release_id": release_id, "environment": environment}
    response = api.post("/v1/deployments", json=body, headers=api.headers("deployer", subject="dave"))
    assert response.status_code == 201, response.text


def promote(api: Api, environment: str, *releases: dict[str, Any], dry_run: bool = False,
            subject: str = "dave") -> httpx.Response:
    body = {
        "environment": environment,
        "releases": [{"repository": r["repository"], "project": r["project"],
                      "release": str(r["release_number"])} for r in releases],
        "dry_run": dry_run,
    }
    return api.post("/v1/promotions", json=body, headers=api.headers("deployer", subject=subject))


def approve(api: Api, release_id: str, subject: str, environment: str = "production",
            **fields: Any) -> httpx.Response:
    body = {"release_id": release_id, "environment": environment, "justification": "CAB-7", **fields}
    return api.post("/v1/approvals", json=body, headers=api.headers("approver", subject=subject))


def rules(decision: dict[str, Any]) -> dict[str, bool]:
    return {rule["name"]: rule["passed"] for rule in decision["rules"]}


def history(api: Api, environment: str, repository: str, project: str = "svc") -> list[tuple[int, str]]:
    answer = api.get(f"/v1/deployments/{environment}/{repository}/{project}/history?limit=200", "viewer")
    assert answer.status_code == 200, answer.text
    return [(d["release_number"], d["status"]) for d in answer.json()["deployments"]]


def test_default_policy_staging_then_production_after_another_person_approves(api: Api) -> None:
    repository = unique_repo()
    tagged = release(api, repository, tag="v1.2.0")
    land(api, tagged["id"], "dev")

    dry = promote(api, "staging", tagged, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["allowed"], dry.json()["deployments"]) == (True, [])
    (decision,) = dry.json()["decision"]["decisions"]
    assert rules(decision) == dict.fromkeys(
        ("source", "trigger", "branch", "approvals", "not_current", "forward"), True)
    assert history(api, "staging", repository) == []  # a dry run changes nothing

    staged = promote(api, "staging", tagged)
    assert staged.status_code == 201, staged.text
    (deployment,) = staged.json()["deployments"]
    assert (deployment["status"], deployment["deployed_by"], deployment["environment"]) == (
        "pending", "dave", "staging")
    assert history(api, "staging", repository) == [(1, "pending")]
    land(api, tagged["id"], "staging")

    refused = promote(api, "production", tagged)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert "refused: rule `approvals`" in error["message"]
    assert "0 of 1 approval" in error["message"]
    assert error["details"]["blocking"] == {"svc": ["approvals"]}

    own = approve(api, tagged["id"], "alice")  # the author
    assert own.status_code == 403, own.text
    assert "self-approval" in own.json()["error"]["message"]
    assert approve(api, tagged["id"], "dave").status_code == 201  # dave promotes: it does not count
    still = promote(api, "production", tagged)
    assert still.status_code == 403
    assert "dave (the promoter)" in still.json()["error"]["message"]

    assert approve(api, tagged["id"], "carol").status_code == 201
    accepted = promote(api, "production", tagged)
    assert accepted.status_code == 201, accepted.text
    (decision,) = accepted.json()["decision"]["decisions"]
    approvals = next(r for r in decision["rules"] if r["name"] == "approvals")
    assert approvals["passed"] and "counted: carol" in approvals["reason"]
    assert history(api, "production", repository) == [(1, "pending")]


def test_staging_refuses_a_release_of_another_branch_and_production_a_branch_release(api: Api) -> None:
    repository = unique_repo()
    feature = release(api, repository, branch="feature/login")
    land(api, feature["id"], "dev")
    refused = promote(api, "staging", feature)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["blocking"] == {"svc": ["branch"]}
    assert "'feature/login' matches none of main, release/*" in refused.json()["error"]["message"]

    fix = release(api, repository, branch="release/2.1")
    land(api, fix["id"], "dev")
    assert promote(api, "staging", fix).status_code == 201
    land(api, fix["id"], "staging")
    assert approve(api, fix["id"], "carol").status_code == 201
    blocked = promote(api, "production", fix)
    assert blocked.json()["error"]["details"]["blocking"] == {"svc": ["trigger"]}  # tags only


def test_an_approval_that_expired_after_the_dry_run_is_not_counted(api: Api) -> None:
    repository = unique_repo()
    tagged = release(api, repository, tag="v1.0.0")
    land(api, tagged["id"], "staging")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    assert approve(api, tagged["id"], "carol", expires_at=soon).status_code == 201
    assert promote(api, "production", tagged, dry_run=True).json()["allowed"] is True
    time.sleep(2.2)
    late = promote(api, "production", tagged)
    assert late.status_code == 403, late.text
    assert "carol (expired" in late.json()["error"]["message"]
    assert history(api, "production", repository) == []


def test_a_revoked_approval_is_not_counted(api: Api) -> None:
    repository = unique_repo()
    tagged = release(api, repository, tag="v1.0.0")
    land(api, tagged["id"], "staging")
    approval = approve(api, tagged["id"], "carol").json()
    assert api.delete(f"/v1/approvals/{approval['id']}", "approver").status_code == 200
    refused = promote(api, "production", tagged)
    assert refused.status_code == 403
    assert "carol (revoked)" in refused.json()["error"]["message"]


def test_two_projects_promote_together_all_or_none(api: Api) -> None:
    repository = unique_repo()
    web, api_ = release(api, repository, "web"), release(api, repository, "api")
    land(api, web["id"], "dev")  # api is not in dev yet
    refused = promote(api, "staging", web, api_)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["blocking"] == {"api": ["source"]}
    assert "promotion of 2 projects to staging refused (all or none): 1 blocked" in refused.json()["error"]["message"]
    assert history(api, "staging", repository, "web") == []  # web was not promoted alone

    land(api, api_["id"], "dev")
    together = promote(api, "staging", web, api_)
    assert together.status_code == 201, together.text
    assert sorted(d["project"] for d in together.json()["deployments"]) == ["api", "web"]
    assert {d["status"] for d in together.json()["deployments"]} == {"pending"}

    twice = api.post("/v1/promotions", headers=api.headers("deployer"), json={
        "environment": "staging", "releases": [
            {"repository": repository, "project": "web", "release": "1"},
            {"repository": repository, "project": "web", "release": "1"}]})
    assert twice.status_code == 400
    assert "project web of" in twice.json()["error"]["message"]
    assert twice.json()["error"]["details"]["where"] == "releases.1"


def test_ten_parallel_promotions_of_one_project_keep_one_order(api: Api) -> None:
    repository = unique_repo()
    releases = [release(api, repository) for _ in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda r: promote(api, "dev", r), releases))
    assert {a.status_code for a in answers} <= {201, 403}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 403:
            assert answer.json()["error"]["details"]["blocking"] == {"svc": ["forward"]}
    accepted = [n for n, _ in reversed(history(api, "dev", repository))]  # oldest first
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted)  # never backwards
    assert accepted[-1] == 10  # the newest always wins
    assert len(accepted) == sum(a.status_code == 201 for a in answers)

    other = unique_repo()
    same = release(api, other)
    with ThreadPoolExecutor(max_workers=10) as pool:
        again = list(pool.map(lambda _: promote(api, "dev", same), range(10)))
    assert sorted(a.status_code for a in again) == [201] + [403] * 9  # one promotion, no duplicate
    assert history(api, "dev", other) == [(1, "pending")]


def test_rollback_redeploys_the_previous_release(api: Api) -> None:
    repository = unique_repo()
    first, second = release(api, repository), release(api, repository)
    land(api, first["id"], "dev")
    land(api, second["id"], "dev")
    body = {"environment": "dev", "repository": repository, "project": "svc"}
    dry = api.post("/v1/rollbacks", json={**body, "dry_run": True}, headers=api.headers("deployer"))
    assert dry.status_code == 200, dry.text
    (decision,) = dry.json()["decision"]["decisions"]
    assert (decision["kind"], decision["number"], rules(decision)) == (
        "rollback", 1, {"history": True, "not_current": True, "backward": True})
    rolled = api.post("/v1/rollbacks", json=body, headers=api.headers("deployer"))
    assert rolled.status_code == 201, rolled.text
    assert [(d["release_number"], d["status"]) for d in rolled.json()["deployments"]] == [(1, "pending")]

    never = release(api, repository)
    refused = api.post("/v1/rollbacks", json={**body, "release": str(never["release_number"])},
                       headers=api.headers("deployer"))
    assert refused.status_code == 403
    assert set(refused.json()["error"]["details"]["blocking"]["svc"]) == {"history", "backward"}


def test_environments_recorded_with_the_run_decide(api: Api) -> None:
    repository = unique_repo()
    plan = {"environments": {"items": [
        {"name": "dev", "auto_deploy": True},
        {"name": "production", "from": "dev", "approval": {"required": 2, "roles": ["release-manager"]}},
    ]}}
    made = release(api, repository, plan=plan)  # a branch release: this production takes any trigger
    land(api, made["id"], "dev")
    unknown = promote(api, "staging", made)  # one of the platform's, not of this repository's repo.cue
    assert (unknown.status_code, unknown.json()["error"]["details"]["where"]) == (400, "environment")
    assert (f"unknown environment 'staging' for {repository}; known to its repo.cue: dev, production"
            in unknown.json()["error"]["message"])
    assert approve(api, made["id"], "carol").status_code == 201
    manager = api.headers("approver", "release-manager", subject="erin")
    body = {"release_id": made["id"], "environment": "production", "justification": "ok"}
    assert api.post("/v1/approvals", json=body, headers=manager).status_code == 201
    refused = promote(api, "production", made)
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert "1 of 2 approvals" in message and "counted: erin" in message
    assert "carol (holds none of role release-manager)" in message
    assert refused.json()["error"]["details"]["blocking"] == {"svc": ["approvals"]}


QA_PLAN = {"environments": {"items": [
    {"name": "dev", "auto_deploy": True},
    {"name": "qa", "from": "dev", "branches": ["main"]},
    {"name": "prod-eu", "from": "qa", "approval": {"required": 1, "expiry": "PT72H"}},
]}}


def test_environments_declared_in_repo_cue_are_the_repository_s(api: Api) -> None:
    """qa and prod-eu are not the platform's (FORGE_API__ENVIRONMENTS): repo.cue drives them."""
    repository = unique_repo()
    made = release(api, repository, plan=QA_PLAN)
    listed = api.get("/v1/environments", "viewer", params={"repository": repository})
    assert listed.status_code == 200, listed.text
    answer = listed.json()
    assert (answer["source"], answer["run_id"] is not None) == ("repo.cue", True)
    assert [(e["name"], e["promoted_from"], e["approvals_required"], e["protected"])
            for e in answer["environments"]] == [
        ("dev", None, 0, False), ("qa", "dev", 0, False), ("prod-eu", "qa", 1, True)]
    assert answer["environments"][2]["approval_expiry_seconds"] == 72 * 3600

    land(api, made["id"], "dev")
    staged = promote(api, "qa", made)
    assert staged.status_code == 201, staged.text
    assert [(d["environment"], d["status"]) for d in staged.json()["deployments"]] == [("qa", "pending")]
    # a direct deployment to prod-eu needs an approval: its repo.cue asks one for promotions there
    direct = api.post("/v1/deployments", json={"release_id": made["id"], "environment": "prod-eu"},
                      headers=api.headers("deployer", subject="dave"))
    assert direct.status_code == 403, direct.text
    assert approve(api, made["id"], "carol", environment="prod-eu").status_code == 201
    approved = api.post("/v1/deployments", json={"release_id": made["id"], "environment": "prod-eu"},
                        headers=api.headers("deployer", subject="dave"))
    assert approved.status_code == 201, approved.text
    production = api.post("/v1/deployments", json={"release_id": made["id"], "environment": "production"},
                          headers=api.headers("deployer", subject="dave"))
    assert production.status_code == 400  # the platform's production is not one of this repository's
    assert "known to its repo.cue: dev, qa, prod-eu" in production.json()["error"]["message"]


def test_without_a_block_the_defaults_and_the_platform_s_environments_apply(api: Api) -> None:
    repository = unique_repo()
    release(api, repository, plan={"phases": []})
    answer = api.get("/v1/environments", "viewer", params={"repository": repository}).json()
    assert (answer["source"], answer["run_id"]) == ("defaults", None)
    assert [(e["name"], e["auto_deploy"], e["branches"], e["triggers"], e["approvals_required"], e["protected"])
            for e in answer["environments"]] == [
        ("dev", True, [], [], 0, False), ("staging", False, ["main", "release/*"], [], 0, False),
        ("production", False, [], ["tag"], 1, True)]
    never = api.get("/v1/environments", "viewer", params={"repository": unique_repo()}).json()
    assert never["source"] == "defaults"
    moon = promote(api, "moon", release(api, repository))
    assert (moon.status_code, moon.json()["error"]["details"]["where"]) == (400, "environment")
    assert "known to the platform (FORGE_API__ENVIRONMENTS): dev, staging, production" in moon.text


def test_the_newest_planned_run_says_which_environments_the_repository_has(api: Api) -> None:
    repository = unique_repo()
    release(api, repository, plan=QA_PLAN)
    assert api.get("/v1/environments", "viewer", params={"repository": repository}).json()["source"] == "repo.cue"
    release(api, repository)  # a run without a plan (not discovered yet) changes nothing
    assert api.get("/v1/environments", "viewer", params={"repository": repository}).json()["source"] == "repo.cue"
    release(api, repository, plan={"phases": []})  # the block was removed from repo.cue
    assert api.get("/v1/environments", "viewer", params={"repository": repository}).json()["source"] == "defaults"


def test_the_environments_of_another_repository_are_refused_to_a_scoped_token(api: Api) -> None:
    token = api.key.mint("ci", permissions=["read"], extra={"repository": "acme/other"})
    answer = api.client.get("/v1/environments", params={"repository": unique_repo()},
                            headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


def test_promoting_needs_the_deployer_role_and_the_token_s_repository(api: Api) -> None:
    repository = unique_repo()
    made = release(api, repository)
    body = {"environment": "dev", "releases": [
        {"repository": repository, "project": "svc", "release": "1"}]}
    assert api.post("/v1/promotions", "viewer", json=body).status_code == 403
    assert api.post("/v1/promotions", "approver", json=body).status_code == 403
    def scoped_to(repo: str) -> dict[str, str]:
        token = api.key.mint("ci", permissions=["deploy", "read"], extra={"repository": repo})
        return {"Authorization": f"Bearer {token}"}

    refused = api.client.post("/v1/promotions", json=body, headers=scoped_to("acme/other"))
    assert refused.status_code == 403, refused.text
    assert "acme/other only" in refused.json()["error"]["message"]
    assert api.client.post("/v1/promotions", json=body, headers=scoped_to(repository)).status_code == 201
    assert made["release_number"] == 1
