"""Environments and promotion as data, and the pure decisions taken on them.

An ``environments`` block of ``repo.cue`` names each environment, which one it is promoted
``from`` (none for the first), whether releases auto-deploy to it, the release triggers and branch
globs it accepts, and its approval policy. A decision never raises for a refusal: it returns every
rule it evaluated with a plain-words reason, so a caller can print why and which rule blocks.

Without a block, :data:`DEFAULT_ENVIRONMENTS` applies: ``dev`` auto-deployed from any branch,
``staging`` from dev on ``main`` or ``release/*``, ``production`` from staging for tag releases
with one approval by someone other than the release's author (or the promoter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from forge_core.domain.durations import parse_duration
from forge_core.domain.errors import ForgeError
from forge_core.domain.gitops import DNS_LABEL, DNS_LABEL_MAX, FullCommit
from forge_core.domain.models import Model


class EnvironmentsError(ForgeError):
    """An ``environments`` block that cannot be used; ``where`` names the environment or field."""

    code = "invalid_environments"
    exit_code = 2


# -- configuration ------------------------------------------------------------------------------


class ApprovalPolicy(Model):
    """How many approvals a promotion needs, from whom, and how long an approval stays good.

    An approval counts when it is for this environment, not revoked, not expired (its own
    ``expires_at``, or ``approved_at + expiry``), and its approver has one of ``roles`` or
    ``groups`` (either set empty and the other too: anyone). Unless ``self_approval`` is allowed,
    approvals by the release's author or by the promoter do not count.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    required: int = Field(default=0, ge=0)
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    expiry: timedelta | None = None
    self_approval: bool = Field(default=False, alias="selfApproval")

    @field_validator("expiry", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        # "72h" as CUE writes it; an ISO 8601 "PT72H" (how the model itself serialises) as pydantic reads it
        return parse_duration(value) if isinstance(value, str) and not value.startswith("P") else value

    @field_validator("expiry")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("expiry must be a positive duration")
        return value


# The API records a branch release as `branch_push`; `release.on` and this block call it `branch`.
_TRIGGER_SPELLINGS = {"branch_push": "branch"}


def trigger_name(value: str) -> str:
    """The release trigger type as environments name it (``branch_push`` is read as ``branch``)."""
    return _TRIGGER_SPELLINGS.get(value, value)


class Environment(Model):
    """One environment: where it is promoted from, what it admits, and its approval policy.

    ``triggers`` (release trigger types, e.g. ``branch``, ``tag``, ``manual``) and ``branches``
    (globs: ``*`` within one path segment, ``**`` across ``/``) are empty for "any".
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    from_: str | None = Field(default=None, alias="from")
    auto_deploy: bool = Field(default=False, alias="autoDeploy")
    triggers: frozenset[str] = frozenset()
    branches: tuple[str, ...] = ()
    approval: ApprovalPolicy = ApprovalPolicy()

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > DNS_LABEL_MAX:
            raise ValueError(f"environment name {value!r} must be a DNS label (lower-case letters, digits, hyphens)")
        return value

    @field_validator("triggers")
    @classmethod
    def _trigger_names(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(trigger_name(t) for t in value)

    @field_validator("branches")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not pattern:
                raise ValueError("a branch pattern is empty")
        return value


class Environments(Model):
    """The environments of a repository, in promotion order (each after the one it is promoted from).

    Validated: names unique, exactly one first environment (no ``from``), every ``from`` names an
    environment, and every environment is reachable from the first (which also rules out cycles).
    Several environments may be promoted from the same one.
    """

    items: tuple[Environment, ...]

    @model_validator(mode="after")
    def _ordering(self) -> Environments:
        names = [env.name for env in self.items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise EnvironmentsError(f"environment(s) declared twice: {', '.join(duplicates)}", where=duplicates[0])
        roots = [env.name for env in self.items if env.from_ is None]
        if len(roots) != 1:
            found = ", ".join(roots) if roots else "none"
            raise EnvironmentsError(
                f"exactly one environment has no 'from' (the first one); found {len(roots)}: {found}",
                where="environments",
            )
        for env in self.items:
            if env.from_ is not None and env.from_ not in names:
                raise EnvironmentsError(
                    f"promoted from unknown environment {env.from_!r}; known: {', '.join(names)}",
                    where=f"environments.{env.name}.from",
                )
            if env.from_ == env.name:
                raise EnvironmentsError("an environment cannot be promoted from itself",
                                        where=f"environments.{env.name}.from")
        reached = {roots[0]}
        for env in self._walk(roots[0]):
            reached.add(env.name)
        stranded = [n for n in names if n not in reached]
        if stranded:
            raise EnvironmentsError(
                f"'from' forms a cycle, the first environment {roots[0]!r} never leads to: {', '.join(stranded)}",
                where=f"environments.{stranded[0]}.from",
            )
        return self

    def _walk(self, start: str) -> Iterator[Environment]:
        for env in self.items:
            if env.from_ == start:
                yield env
                yield from self._walk(env.name)

    @property
    def first(self) -> Environment:
        return next(env for env in self.items if env.from_ is None)

    @property
    def ordered(self) -> tuple[Environment, ...]:
        """First environment, then depth-first along ``from`` (declaration order among siblings)."""
        return (self.first, *self._walk(self.first.name))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.ordered)

    def get(self, name: str) -> Environment:
        for env in self.items:
            if env.name == name:
                return env
        raise EnvironmentsError(f"no environment {name!r}; known: {', '.join(self.names)}", where=name)

    @classmethod
    def from_value(cls, value: Mapping[str, Any], *, where: str = "environments") -> Environments:
        """The ``environments`` block of ``repo.cue`` (evaluated), keys as the CUE writes them::

            environments: {
                dev: {autoDeploy: true}
                staging: {from: "dev", branches: ["main", "release/*"]}
                production: {from: "staging", triggers: ["tag"],
                             approval: {required: 1, roles: ["release-manager"], expiry: "72h"}}
            }
        """
        if not isinstance(value, Mapping) or not value:
            raise EnvironmentsError("must be a non-empty mapping of environment name to settings", where=where)
        return cls(items=tuple(_environment(name, spec, f"{where}.{name}") for name, spec in value.items()))


def _environment(name: str, spec: Any, where: str) -> Environment:
    if not isinstance(spec, Mapping):
        raise EnvironmentsError("must be a mapping", where=where)
    if "name" in spec:
        raise EnvironmentsError("unknown field (an environment is named by its key)", where=f"{where}.name")
    try:
        return Environment.model_validate({**spec, "name": name})
    except ValidationError as error:  # located by the CUE spelling of the field (the aliases)
        first = error.errors()[0]
        at = ".".join(str(part) for part in first["loc"] if part != "name")
        problem = "unknown field" if first["type"] == "extra_forbidden" else str(
            first.get("ctx", {}).get("error", first["msg"]))
        raise EnvironmentsError(problem, where=f"{where}.{at}" if at else where) from error


DEFAULT_ENVIRONMENTS = Environments(
    items=(
        Environment(name="dev", auto_deploy=True),
        Environment(name="staging", from_="dev", branches=("main", "release/*")),
        Environment(name="production", from_="staging", triggers=frozenset({"tag"}),
                    approval=ApprovalPolicy(required=1)),
    )
)


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def branch_matches(branch: str, pattern: str) -> bool:
    """``branch`` against a glob: ``*`` and ``?`` stay within one ``/`` segment, ``**`` crosses them."""
    return _glob(pattern).fullmatch(branch) is not None


# -- facts --------------------------------------------------------------------------------------


class Placement(Model):
    """One deployment of a release to an environment: since when, and whether it is still the active one."""

    environment: str
    since: datetime
    active: bool = True


class ReleaseFacts(Model):
    """What a decision knows about a release.

    ``branch`` is the branch the release was cut from; for a tag release, the branch holding the
    tagged commit when known (so a tag on ``main`` passes ``staging``'s branch rule). ``trigger`` is
    the release trigger type that fired (``branch``, ``tag``, ``manual``, …). ``placements`` is the
    release's deployment history: active ones say where it runs now.
    """

    repository: str
    project: str
    number: int = Field(ge=1)
    commit: FullCommit
    author: str
    trigger: str
    branch: str | None = None
    tag: str | None = None
    placements: tuple[Placement, ...] = ()

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        return trigger_name(value)

    def active_in(self, environment: str) -> Placement | None:
        return next((p for p in self.placements if p.environment == environment and p.active), None)

    def ever_in(self, environment: str) -> Placement | None:
        """The earliest deployment of this release to ``environment``, active or superseded."""
        return min((p for p in self.placements if p.environment == environment), key=lambda p: p.since, default=None)


class Approval(Model):
    """One person's approval of a release for an environment, with the roles and groups they held."""

    approver: str
    environment: str
    approved_at: datetime
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    revoked: bool = False


class RuleResult(Model):
    """One rule of a decision: its name, whether it passed, and why, in plain words."""

    name: str
    passed: bool
    reason: str


class PromotionDecision(Model):
    """Whether ``project``'s release ``number`` may go to ``environment`` now, with every rule evaluated."""

    kind: str = "promotion"
    environment: str
    repository: str
    project: str
    number: int
    allowed: bool
    rules: tuple[RuleResult, ...]

    @property
    def blocking(self) -> tuple[RuleResult, ...]:
        return tuple(rule for rule in self.rules if not rule.passed)

    def explain(self) -> str:
        """One line per blocking rule (``refused: rule `x` — why``), or the allowed verdict."""
        head = f"{self.kind} of {self.project} release {self.number} to {self.environment}"
        if self.allowed:
            return f"{head}: allowed"
        return "\n".join([f"{head}:"] + [f"refused: rule `{r.name}` — {r.reason}" for r in self.blocking])


class GroupDecision(Model):
    """Several projects promoted together: allowed only if every one is (all or none)."""

    environment: str
    allowed: bool
    decisions: tuple[PromotionDecision, ...]

    @property
    def blocking(self) -> dict[str, tuple[RuleResult, ...]]:
        """Each refused project and the rules that block it."""
        return {d.project: d.blocking for d in self.decisions if not d.allowed}

    def explain(self) -> str:
        if self.allowed:
            projects = ", ".join(d.project for d in self.decisions)
            return f"promotion of {projects} to {self.environment}: allowed"
        refused = [d for d in self.decisions if not d.allowed]
        head = (f"promotion of {len(self.decisions)} projects to {self.environment} refused (all or none): "
                f"{len(refused)} blocked")
        return "\n".join([head] + [d.explain() for d in refused])


class PromotionRequest(Model):
    """One project's part of a promotion: its release, the approvals recorded for it, and the release
    number active in the target environment now (None if nothing is deployed there)."""

    release: ReleaseFacts
    approvals: tuple[Approval, ...] = ()
    current: int | None = None


# -- rules --------------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _source_rule(target: Environment, release: ReleaseFacts) -> RuleResult:
    if target.from_ is None:
        return RuleResult(name="source", passed=True, reason=f"{target.name} is the first environment")
    placed = release.active_in(target.from_)
    if placed is None:
        where = [p.environment for p in release.placements if p.active]
        now = f"it runs in {', '.join(sorted(where))}" if where else "it is deployed nowhere"
        return RuleResult(name="source", passed=False,
                          reason=f"release {release.number} is not deployed in {target.from_}, "
                          f"where {target.name} is promoted from ({now})")
    return RuleResult(name="source", passed=True,
                      reason=f"release {release.number} runs in {target.from_} since {_when(placed.since)}")


def _trigger_rule(target: Environment, release: ReleaseFacts) -> RuleResult:
    if not target.triggers:
        return RuleResult(name="trigger", passed=True, reason=f"{target.name} accepts releases of any trigger")
    allowed = ", ".join(sorted(target.triggers))
    if release.trigger in target.triggers:
        return RuleResult(name="trigger", passed=True,
                          reason=f"a {release.trigger} release ({target.name} accepts {allowed})")
    return RuleResult(name="trigger", passed=False,
                      reason=f"release {release.number} came from a {release.trigger} trigger; "
                      f"{target.name} accepts only: {allowed}")


def _branch_rule(target: Environment, release: ReleaseFacts) -> RuleResult:
    if not target.branches:
        return RuleResult(name="branch", passed=True, reason=f"{target.name} accepts any branch")
    patterns = ", ".join(target.branches)
    if release.branch is None:
        return RuleResult(name="branch", passed=False,
                          reason=f"release {release.number} has no branch; {target.name} accepts only {patterns}")
    for pattern in target.branches:
        if branch_matches(release.branch, pattern):
            return RuleResult(name="branch", passed=True, reason=f"branch {release.branch!r} matches {pattern!r}")
    return RuleResult(name="branch", passed=False,
                      reason=f"branch {release.branch!r} matches none of {patterns}")


def _approval_refusal(
    approval: Approval, policy: ApprovalPolicy, release: ReleaseFacts, actor: str, now: datetime
) -> str | None:
    """Why ``approval`` does not count, or None when it does."""
    if approval.revoked:
        return "revoked"
    if approval.approved_at > now:
        return f"dated in the future ({_when(approval.approved_at)})"
    ends = [t for t in (approval.expires_at,
                        approval.approved_at + policy.expiry if policy.expiry else None) if t is not None]
    if ends and min(ends) <= now:
        return f"expired {_when(min(ends))}"
    if not policy.self_approval and approval.approver == release.author:
        return "the release's author"
    if not policy.self_approval and approval.approver == actor:
        return "the promoter"
    if (policy.roles or policy.groups) and not (approval.roles & policy.roles or approval.groups & policy.groups):
        return f"holds none of {_who(policy)}"
    return None


def _who(policy: ApprovalPolicy) -> str:
    parts = [f"role {r}" for r in sorted(policy.roles)] + [f"group {g}" for g in sorted(policy.groups)]
    return " or ".join(parts)


def _approval_rule(
    target: Environment, release: ReleaseFacts, approvals: Iterable[Approval], actor: str, now: datetime
) -> RuleResult:
    policy = target.approval
    if policy.required == 0:
        return RuleResult(name="approvals", passed=True, reason=f"{target.name} needs no approval")
    counted: list[str] = []
    refused: list[str] = []
    for approval in approvals:
        if approval.environment != target.name:
            continue
        why = _approval_refusal(approval, policy, release, actor, now)
        if why is None and approval.approver not in counted:
            counted.append(approval.approver)
        elif why is not None:
            refused.append(f"{approval.approver} ({why})")
    # Plain words for the policy: "from someone other than the author (alice)", "holding role x".
    terms = []
    if not policy.self_approval:
        promoter = "" if actor == release.author else f" or the promoter ({actor})"
        terms.append(f"from someone other than the author ({release.author}){promoter}")
    if policy.roles or policy.groups:
        terms.append(f"holding {_who(policy)}")
    if policy.expiry:
        terms.append(f"given within {policy.expiry}")
    summary = f"{len(counted)} of {policy.required} approval{'s' if policy.required != 1 else ''}"
    summary += (" " + ", ".join(terms)) if terms else ""
    if counted:
        summary += f"; counted: {', '.join(counted)}"
    if refused:
        summary += f"; not counted: {', '.join(refused)}"
    return RuleResult(name="approvals", passed=len(counted) >= policy.required, reason=summary)


def _not_current_rule(target: Environment, release: ReleaseFacts) -> RuleResult:
    placed = release.active_in(target.name)
    if placed is not None:
        return RuleResult(name="not_current", passed=False,
                          reason=f"release {release.number} is already active in {target.name} "
                          f"since {_when(placed.since)}")
    return RuleResult(name="not_current", passed=True,
                      reason=f"release {release.number} is not active in {target.name}")


def _forward_rule(target: Environment, release: ReleaseFacts, current: int | None) -> RuleResult:
    if current is None:
        return RuleResult(name="forward", passed=True, reason=f"nothing of {release.project} runs in {target.name} yet")
    if release.number > current:
        return RuleResult(name="forward", passed=True, reason=f"release {release.number} is newer than {current}")
    return RuleResult(name="forward", passed=False,
                      reason=f"release {release.number} is not newer than release {current} running in {target.name}; "
                      "going back is a rollback")


def _decision(kind: str, target: Environment, release: ReleaseFacts, rules: list[RuleResult]) -> PromotionDecision:
    return PromotionDecision(kind=kind, environment=target.name, repository=release.repository,
                             project=release.project, number=release.number,
                             allowed=all(r.passed for r in rules), rules=tuple(rules))


# -- decisions ----------------------------------------------------------------------------------


def decide_promotion(
    target: Environment,
    release: ReleaseFacts,
    approvals: Sequence[Approval],
    *,
    actor: str,
    now: datetime,
    current: int | None = None,
) -> PromotionDecision:
    """May ``actor`` deploy ``release`` to ``target`` at ``now``?

    Rules, all evaluated: ``source`` (active in the environment it is promoted from), ``trigger``,
    ``branch``, ``approvals`` (see :class:`ApprovalPolicy`), ``not_current`` (not already active
    there) and ``forward`` (newer than ``current``, the release number active there now).
    """
    rules = [
        _source_rule(target, release),
        _trigger_rule(target, release),
        _branch_rule(target, release),
        _approval_rule(target, release, approvals, actor, now),
        _not_current_rule(target, release),
        _forward_rule(target, release, current),
    ]
    return _decision("promotion", target, release, rules)


def decide_auto_deploy(target: Environment, release: ReleaseFacts, *, now: datetime) -> PromotionDecision:
    """Does a new release deploy itself to ``target`` (the first environment, usually)?

    Rules: ``auto_deploy`` (the environment allows it), ``source`` (only the first environment takes
    releases that run nowhere), ``trigger``, ``branch``, and ``approvals`` (a policy that requires
    one stops an automatic deployment, since nobody has approved a release that was just made).
    """
    auto = RuleResult(name="auto_deploy", passed=target.auto_deploy,
                      reason=f"{target.name} is {'' if target.auto_deploy else 'not '}auto-deployed")
    rules = [auto, _source_rule(target, release), _trigger_rule(target, release), _branch_rule(target, release),
             _approval_rule(target, release, (), "forge", now)]
    return _decision("auto-deployment", target, release, rules)


def decide_rollback(target: Environment, release: ReleaseFacts, *, current: int | None) -> PromotionDecision:
    """May ``release`` go back to ``target``, where release ``current`` runs now?

    A rollback redeploys an immutable release that already passed ``target``'s rules once, so
    the promotion rules (source, trigger, branch, approvals) are not asked again — it is the quick
    way back. Rules: ``history`` (the release was deployed to ``target`` before), ``not_current``,
    and ``backward`` (older than the running release; going forward is a promotion).
    """
    before = release.ever_in(target.name)
    history = RuleResult(
        name="history", passed=before is not None,
        reason=(f"release {release.number} was deployed to {target.name} on {_when(before.since)}" if before
                else f"release {release.number} was never deployed to {target.name}; only a release that ran "
                f"there can be rolled back to"),
    )
    if current is None:
        backward = RuleResult(name="backward", passed=False, reason=f"nothing runs in {target.name} to roll back from")
    elif release.number < current:
        backward = RuleResult(name="backward", passed=True, reason=f"release {release.number} is older than {current}")
    else:
        backward = RuleResult(name="backward", passed=False,
                              reason=f"release {release.number} is not older than release {current} running in "
                              f"{target.name}; going forward is a promotion")
    return _decision("rollback", target, release, [history, _not_current_rule(target, release), backward])


def decide_group(
    target: Environment, requests: Sequence[PromotionRequest], *, actor: str, now: datetime
) -> GroupDecision:
    """Promote several projects to ``target`` together: each decided alone, allowed only if all are."""
    if not requests:
        raise EnvironmentsError("a group promotion needs at least one project", where=target.name)
    seen: set[tuple[str, str]] = set()
    for request in requests:
        key = (request.release.repository, request.release.project)
        if key in seen:
            raise EnvironmentsError(f"project {key[1]} of {key[0]} appears twice in one promotion", where=key[1])
        seen.add(key)
    decisions = tuple(
        decide_promotion(target, r.release, r.approvals, actor=actor, now=now, current=r.current) for r in requests
    )
    return GroupDecision(environment=target.name, allowed=all(d.allowed for d in decisions), decisions=decisions)
