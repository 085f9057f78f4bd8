"""Promotions and rollbacks: the facts a store reads for each project, and the decision taken on
them (the pure rules of :mod:`forge_core.domain.promotion`).

The store reads the facts and calls the decision inside the transaction that creates the
deployments, with the time of that transaction: an approval that expires or is revoked between a
dry run and the real request is not counted, and parallel promotions of one project are decided
one after the other, each on what the previous one left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from forge_core.domain.promotion import (
    DEFAULT_ENVIRONMENTS,
    Approval,
    Environment,
    Environments,
    EnvironmentsError,
    GroupDecision,
    PromotionDecision,
    ReleaseFacts,
    decide_promotion,
    decide_rollback,
)
from forge_core.services.errors import AuthorizationFailed, InvalidRequest


@dataclass(frozen=True)
class Candidate:
    """One project of a promotion or rollback as the store found it.

    ``current`` is the number of the release the target environment has, or is about to have (its
    active or pending deployment, the newer), None if none; ``environments`` are those recorded with
    the release's run (the defaults for a release without one).
    """

    release_id: UUID
    facts: ReleaseFacts
    approvals: tuple[Approval, ...]
    current: int | None
    environments: Environments


Decide = Callable[[Sequence[Candidate], datetime], GroupDecision]
"""Given the candidates and the time of the transaction, the group's decision."""


def environments_of(recorded: Mapping[str, Any] | None) -> Environments:
    """The environments a run recorded (see ``RunPlan.environments``), else the defaults."""
    if not recorded:
        return DEFAULT_ENVIRONMENTS
    return Environments.model_validate(recorded)


def target_of(candidate: Candidate, environment: str) -> Environment:
    try:
        return candidate.environments.get(environment)
    except EnvironmentsError as error:
        facts = candidate.facts
        raise InvalidRequest(
            f"{facts.repository} {facts.project}: {error.message}",
            where="environment",
            details={"environments": list(candidate.environments.names)},
        ) from None


def promotion(environment: str, actor: str) -> Decide:
    """Decide a promotion of every candidate to ``environment`` by ``actor`` (all or none)."""

    def decide(candidates: Sequence[Candidate], now: datetime) -> GroupDecision:
        decisions = [
            decide_promotion(target_of(c, environment), c.facts, c.approvals, actor=actor, now=now,
                             current=c.current)
            for c in candidates
        ]
        return _group(environment, decisions)

    return decide


def rollback(environment: str) -> Decide:
    """Decide a rollback of the (one) candidate in ``environment`` to its older release."""

    def decide(candidates: Sequence[Candidate], now: datetime) -> GroupDecision:
        decisions = [
            decide_rollback(target_of(c, environment), c.facts, current=c.current) for c in candidates
        ]
        return _group(environment, decisions)

    return decide


def _group(environment: str, decisions: Sequence[PromotionDecision]) -> GroupDecision:
    return GroupDecision(environment=environment, allowed=all(d.allowed for d in decisions),
                         decisions=tuple(decisions))


def check_each_project_once(projects: Sequence[tuple[str, str]]) -> None:
    seen: set[tuple[str, str]] = set()
    for index, key in enumerate(projects):
        if key in seen:
            raise InvalidRequest(f"project {key[1]} of {key[0]} appears twice; one promotion deploys it once",
                                 where=f"releases.{index}")
        seen.add(key)


def check_not_self_approval(
    environments: Environments, environment: str, *, author: str, approver: str, number: int
) -> None:
    """An author approving their own release is refused unless the environment's policy allows it."""
    if approver != author:
        return
    policy = environments.get(environment).approval if environment in environments.names else None
    if policy is not None and policy.self_approval:
        return
    raise AuthorizationFailed(
        f"self-approval: {approver} is the author of release {number}; an approval for "
        f"{environment} must come from someone else",
        where="approver",
        details={"rule": "self_approval", "approver": approver},
    )
