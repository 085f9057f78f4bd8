"""Environments and promotion as data: ordering validated, the documented defaults, every rule explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forge_core.domain.promotion import (
    DEFAULT_ENVIRONMENTS,
    Approval,
    ApprovalPolicy,
    Environment,
    Environments,
    EnvironmentsError,
    Placement,
    PromotionDecision,
    PromotionRequest,
    ReleaseFacts,
    branch_matches,
    decide_auto_deploy,
    decide_group,
    decide_promotion,
    decide_rollback,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEV, STAGING, PRODUCTION = (DEFAULT_ENVIRONMENTS.get(n) for n in ("dev", "staging", "production"))


def release(**changes: object) -> ReleaseFacts:
    fields: dict[str, object] = {
        "repository": "acme/monorepo",
        "project": "api",
        "number": 7,
        "commit": "a" * 40,
        "author": "alice",
        "trigger": "tag",
        "branch": "main",
        "tag": "api/v1.2.0",
        "placements": (
            Placement(environment="dev", since=NOW - timedelta(days=2)),
            Placement(environment="staging", since=NOW - timedelta(days=1)),
        ),
    }
    fields.update(changes)
    return ReleaseFacts.model_validate(fields)


def approval(approver: str = "bob", **changes: object) -> Approval:
    fields: dict[str, object] = {"approver": approver, "environment": "production",
                                 "approved_at": NOW - timedelta(hours=1)}
    fields.update(changes)
    return Approval.model_validate(fields)


def rule(decision: PromotionDecision, name: str) -> tuple[bool, str]:
    (found,) = [r for r in decision.rules if r.name == name]
    return found.passed, found.reason


# -- the environments block -----------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULT_ENVIRONMENTS.names == ("dev", "staging", "production")
    assert DEFAULT_ENVIRONMENTS.first == DEV
    assert DEV.auto_deploy and not DEV.branches and not DEV.triggers and DEV.approval.required == 0
    assert (STAGING.from_, STAGING.branches, STAGING.auto_deploy) == ("dev", ("main", "release/*"), False)
    assert (PRODUCTION.from_, PRODUCTION.triggers) == ("staging", frozenset({"tag"}))
    assert PRODUCTION.approval == ApprovalPolicy(required=1, self_approval=False)


def test_a_block_from_repo_cue_is_read() -> None:
    environments = Environments.from_value({
        "qa": {"from": "dev", "branches": ["main"]},
        "dev": {"autoDeploy": True},
        "prod-eu": {"from": "qa", "triggers": ["tag", "manual"],
                    "approval": {"required": 2, "roles": ["release-manager"], "groups": ["sre"], "expiry": "72h"}},
        "prod-us": {"from": "qa"},
    })
    assert environments.names == ("dev", "qa", "prod-eu", "prod-us")
    eu = environments.get("prod-eu")
    assert eu.approval == ApprovalPolicy(required=2, roles=frozenset({"release-manager"}), groups=frozenset({"sre"}),
                                         expiry=timedelta(hours=72))
    assert eu.triggers == frozenset({"tag", "manual"})


@pytest.mark.parametrize(
    ("block", "where", "message"),
    [
        ({"dev": {}, "qa": {}}, "environments", "has no 'from' (the first one); found 2: dev, qa"),
        ({"a": {"from": "b"}, "b": {"from": "a"}}, "environments", "found 0: none"),
        ({"dev": {}, "a": {"from": "b"}, "b": {"from": "a"}}, "environments.a.from", "cycle"),
        ({"dev": {}, "qa": {"from": "stage"}}, "environments.qa.from", "unknown environment 'stage'"),
        ({"dev": {"autoDeploy": True, "autodeploy": True}}, "environments.dev.autodeploy", "unknown field"),
        ({"dev": {"name": "x"}}, "environments.dev.name", "named by its key"),
        ({"dev": {"approval": {"expiry": "3 days"}}}, "environments.dev.approval.expiry", "not a duration"),
        ({"dev": {"approval": {"expiry": "0s"}}}, "environments.dev.approval.expiry", "positive duration"),
        ({"dev": {"approval": {"required": -1}}}, "environments.dev.approval.required", "greater than or equal to 0"),
        ({"dev": {"triggers": "tag"}}, "environments.dev.triggers", "valid frozenset"),
        ({"dev": {"branches": "main"}}, "environments.dev.branches", "valid tuple"),
        ({"dev": {"autoDeploy": "yes please"}}, "environments.dev.autoDeploy", "valid boolean"),
        ({"dev": []}, "environments.dev", "must be a mapping"),
        ({"Dev": {}}, "environments.Dev", "must be a DNS label"),
        ({}, "environments", "non-empty mapping"),
    ],
)
def test_bad_blocks_are_refused_naming_where(block: dict[str, object], where: str, message: str) -> None:
    with pytest.raises(EnvironmentsError) as error:
        Environments.from_value(block)
    assert error.value.where == where
    assert message in error.value.message


def test_declaring_an_environment_twice_is_refused() -> None:
    with pytest.raises(EnvironmentsError, match="declared twice: dev"):
        Environments(items=(Environment(name="dev"), Environment(name="dev")))


def test_an_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(EnvironmentsError, match="no environment 'prod'; known: dev, staging, production"):
        DEFAULT_ENVIRONMENTS.get("prod")


@pytest.mark.parametrize(
    ("branch", "pattern", "matches"),
    [
        ("release/1.2", "release/*", True),
        ("release/1.2/hotfix", "release/*", False),
        ("release/1.2/hotfix", "release/**", True),
        ("main", "main", True),
        ("mainline", "main", False),
        ("feature/x", "*", False),
        ("v1.x", "v1.?", True),
        ("a+b", "a+b", True),
    ],
)
def test_branch_globs(branch: str, pattern: str, matches: bool) -> None:
    assert branch_matches(branch, pattern) is matches


# -- promotion ----------------------------------------------------------------------------------


def test_production_is_refused_without_an_approval_and_the_message_names_the_rule() -> None:
    decision = decide_promotion(PRODUCTION, release(), [], actor="alice", now=NOW)
    assert not decision.allowed
    assert [r.name for r in decision.blocking] == ["approvals"]
    assert "refused: rule `approvals` — 0 of 1 approval from someone other than the author (alice)" in (
        decision.explain())


def test_production_is_allowed_after_another_person_approves() -> None:
    decision = decide_promotion(PRODUCTION, release(), [approval("bob")], actor="alice", now=NOW)
    assert decision.allowed, decision.explain()
    assert rule(decision, "approvals") == (True, "1 of 1 approval from someone other than the author (alice); "
                                                 "counted: bob")
    assert [r.name for r in decision.rules] == ["source", "trigger", "branch", "approvals", "not_current", "forward"]


def test_staging_needs_no_approval_and_the_release_in_dev() -> None:
    in_dev = release(placements=(Placement(environment="dev", since=NOW),))
    assert decide_promotion(STAGING, in_dev, [], actor="alice", now=NOW).allowed


def test_promoting_from_an_environment_where_the_release_is_not_deployed() -> None:
    only_dev = release(placements=(Placement(environment="dev", since=NOW),))
    decision = decide_promotion(PRODUCTION, only_dev, [approval()], actor="alice", now=NOW)
    assert rule(decision, "source") == (
        False, "release 7 is not deployed in staging, where production is promoted from (it runs in dev)")
    superseded = release(placements=(Placement(environment="staging", since=NOW, active=False),))
    assert not rule(decide_promotion(PRODUCTION, superseded, [approval()], actor="alice", now=NOW), "source")[0]


def test_wrong_branch() -> None:
    decision = decide_promotion(STAGING, release(branch="feature/x", placements=(
        Placement(environment="dev", since=NOW),)), [], actor="alice", now=NOW)
    assert rule(decision, "branch") == (False, "branch 'feature/x' matches none of main, release/*")
    no_branch = decide_promotion(STAGING, release(branch=None), [], actor="alice", now=NOW)
    assert "has no branch" in rule(no_branch, "branch")[1]


def test_wrong_trigger() -> None:
    decision = decide_promotion(PRODUCTION, release(trigger="branch"), [approval()], actor="alice", now=NOW)
    assert rule(decision, "trigger") == (False, "release 7 came from a branch trigger; production accepts only: tag")
    assert [r.name for r in decision.blocking] == ["trigger"]


def test_an_expired_approval_does_not_count() -> None:
    expiring = PRODUCTION.model_copy(update={"approval": ApprovalPolicy(required=1, expiry=timedelta(hours=24))})
    old = approval(approved_at=NOW - timedelta(hours=25))
    decision = decide_promotion(expiring, release(), [old], actor="alice", now=NOW)
    passed, reason = rule(decision, "approvals")
    assert not passed
    assert "not counted: bob (expired 2026-12-01T11:00:00+00:00)" in reason
    # its own expiry counts too, and an approval that expires between check and commit is refused
    own = approval(expires_at=NOW + timedelta(minutes=1))
    assert decide_promotion(PRODUCTION, release(), [own], actor="alice", now=NOW).allowed
    assert not decide_promotion(PRODUCTION, release(), [own], actor="alice", now=NOW + timedelta(minutes=1)).allowed


def test_a_revoked_approval_does_not_count() -> None:
    decision = decide_promotion(PRODUCTION, release(), [approval(revoked=True)], actor="alice", now=NOW)
    assert "not counted: bob (revoked)" in rule(decision, "approvals")[1]
    assert not decision.allowed


def test_self_approval_by_the_author_or_the_promoter_does_not_count() -> None:
    by_author = decide_promotion(PRODUCTION, release(), [approval("alice")], actor="carol", now=NOW)
    assert not by_author.allowed
    assert "alice (the release's author)" in rule(by_author, "approvals")[1]
    assert "other than the author (alice) or the promoter (carol)" in rule(by_author, "approvals")[1]
    by_promoter = decide_promotion(PRODUCTION, release(), [approval("carol")], actor="carol", now=NOW)
    assert "carol (the promoter)" in rule(by_promoter, "approvals")[1]
    allowed = PRODUCTION.model_copy(update={"approval": ApprovalPolicy(required=1, self_approval=True)})
    assert decide_promotion(allowed, release(), [approval("alice")], actor="alice", now=NOW).allowed


def test_an_approval_by_a_role_not_allowed_does_not_count() -> None:
    managers = PRODUCTION.model_copy(update={
        "approval": ApprovalPolicy(required=1, roles=frozenset({"release-manager"}), groups=frozenset({"sre"}))})
    developer = approval("bob", roles=frozenset({"developer"}))
    decision = decide_promotion(managers, release(), [developer], actor="alice", now=NOW)
    assert "bob (holds none of role release-manager or group sre)" in rule(decision, "approvals")[1]
    assert not decision.allowed
    assert decide_promotion(managers, release(), [approval("dan", groups=frozenset({"sre"}))],
                            actor="alice", now=NOW).allowed


def test_approvals_count_per_person_and_per_environment() -> None:
    two = PRODUCTION.model_copy(update={"approval": ApprovalPolicy(required=2)})
    twice_bob = [approval("bob"), approval("bob", approved_at=NOW - timedelta(minutes=5))]
    assert not decide_promotion(two, release(), twice_bob, actor="alice", now=NOW).allowed
    for_staging = approval("bob", environment="staging")
    assert not decide_promotion(PRODUCTION, release(), [for_staging], actor="alice", now=NOW).allowed
    assert decide_promotion(two, release(), [approval("bob"), approval("carol")], actor="alice", now=NOW).allowed


def test_an_approval_dated_after_now_does_not_count() -> None:
    future = approval(approved_at=NOW + timedelta(hours=1))
    assert not decide_promotion(PRODUCTION, release(), [future], actor="alice", now=NOW).allowed


def test_already_active_and_older_releases_are_not_promoted() -> None:
    active = release(placements=(*release().placements, Placement(environment="production", since=NOW)))
    decision = decide_promotion(PRODUCTION, active, [approval()], actor="alice", now=NOW, current=7)
    assert {r.name for r in decision.blocking} == {"not_current", "forward"}
    older = decide_promotion(PRODUCTION, release(), [approval()], actor="alice", now=NOW, current=9)
    assert rule(older, "forward") == (False, "release 7 is not newer than release 9 running in production; "
                                             "going back is a rollback")


def test_every_rule_is_listed_even_when_several_block() -> None:
    bad = release(trigger="branch", branch="feature/x", placements=())
    decision = decide_promotion(PRODUCTION, bad, [], actor="alice", now=NOW)
    assert [r.name for r in decision.blocking] == ["source", "trigger", "approvals"]
    assert decision.explain().count("refused: rule") == 3


# -- auto-deploy, rollback, groups ---------------------------------------------------------------


def test_a_new_release_auto_deploys_to_dev_only() -> None:
    fresh = release(trigger="branch", branch="feature/x", placements=())
    assert decide_auto_deploy(DEV, fresh, now=NOW).allowed
    staging = decide_auto_deploy(STAGING, fresh, now=NOW)
    assert {r.name for r in staging.blocking} == {"auto_deploy", "source", "branch"}
    auto_production = PRODUCTION.model_copy(update={"auto_deploy": True, "from_": None, "triggers": frozenset()})
    assert [r.name for r in decide_auto_deploy(auto_production, fresh, now=NOW).blocking] == ["approvals"]


def test_rollback_to_a_release_deployed_there_before() -> None:
    earlier = release(number=5, placements=(Placement(environment="production", since=NOW - timedelta(days=9),
                                                      active=False),))
    decision = decide_rollback(PRODUCTION, earlier, current=7)
    assert decision.allowed, decision.explain()
    assert decision.kind == "rollback"
    assert [r.name for r in decision.rules] == ["history", "not_current", "backward"]


def test_rollback_to_a_release_never_deployed_there_is_refused() -> None:
    never = release(number=5, placements=(Placement(environment="staging", since=NOW, active=False),))
    decision = decide_rollback(PRODUCTION, never, current=7)
    assert rule(decision, "history") == (
        False, "release 5 was never deployed to production; only a release that ran there can be rolled back to")
    forward = decide_rollback(PRODUCTION, release(number=8, placements=(
        Placement(environment="production", since=NOW, active=False),)), current=7)
    assert "going forward is a promotion" in rule(forward, "backward")[1]
    assert not decide_rollback(PRODUCTION, earlier_in_production(), current=None).allowed


def earlier_in_production() -> ReleaseFacts:
    return release(number=5, placements=(Placement(environment="production", since=NOW, active=False),))


def test_several_projects_promote_all_or_none() -> None:
    api = PromotionRequest(release=release(), approvals=(approval("bob"),), current=6)
    web = PromotionRequest(release=release(project="web", number=3, author="bob"), approvals=(approval("bob"),))
    group = decide_group(PRODUCTION, [api, web], actor="alice", now=NOW)
    assert not group.allowed
    assert [d.allowed for d in group.decisions] == [True, False]
    assert list(group.blocking) == ["web"]
    assert [r.name for r in group.blocking["web"]] == ["approvals"]
    text = group.explain()
    assert text.startswith("promotion of 2 projects to production refused (all or none): 1 blocked")
    assert "web release 3" in text and "bob (the release's author)" in text
    fixed = web.model_copy(update={"approvals": (approval("carol"),)})
    assert decide_group(PRODUCTION, [api, fixed], actor="alice", now=NOW).allowed


def test_a_group_naming_one_project_twice_is_refused() -> None:
    api = PromotionRequest(release=release())
    with pytest.raises(EnvironmentsError, match="appears twice"):
        decide_group(PRODUCTION, [api, api], actor="alice", now=NOW)
    with pytest.raises(EnvironmentsError, match="at least one project"):
        decide_group(PRODUCTION, [], actor="alice", now=NOW)


def test_the_apis_branch_push_trigger_is_read_as_branch() -> None:
    assert release(trigger="branch_push").trigger == "branch"
    only_branches = STAGING.model_copy(update={"triggers": frozenset({"branch"})})
    in_dev = release(trigger="branch_push", placements=(Placement(environment="dev", since=NOW),))
    assert decide_promotion(only_branches, in_dev, [], actor="alice", now=NOW).allowed
    assert Environments.from_value({"dev": {"triggers": ["branch_push"]}}).first.triggers == frozenset({"branch"})


def test_a_release_needs_a_full_commit() -> None:
    with pytest.raises(ValueError, match="40-hex"):
        release(commit="abc123")
