"""The use cases of the Platform API, framework-free: the API (and tests) call these.

Rules that need the settings live here (known environments, which need approvals); rules that
must hold inside a transaction are applied by the store (see :mod:`forge_core.services.rules`).
Lifecycle hooks are called after the change is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from forge_core.domain.models import DeploymentInfo, PipelineRunInfo, ReleaseInfo, RunStatus
from forge_core.domain.promotion import DEFAULT_ENVIRONMENTS, Environment, Environments, GroupDecision
from forge_core.services import promotion
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, InvalidRequest
from forge_core.services.promotion import check_each_project_once
from forge_core.services.store import Store

log = logging.getLogger("forge.api")
LEASE_SWEEPER = "lease-sweeper"
"""The actor the audit log names for runs closed because their lease lapsed."""
OPEN = (RunStatus.PENDING, RunStatus.RUNNING)

Notify = Callable[..., object]
"""``notify(hook_name, **kwargs)``: calls a lifecycle hook of every plugin (PluginHost.notify)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _no_hooks(_hook: str, **_kwargs: object) -> None:
    return None


@dataclass(frozen=True)
class Policy:
    environments: Sequence[str]
    protected_environments: Sequence[str]


class Platform:
    def __init__(self, store: Store, policy: Policy, notify: Notify = _no_hooks) -> None:
        self.store = store
        self.policy = policy
        self.notify = notify

    # --- runs -----------------------------------------------------------------------------------

    async def create_run(self, data: s.RunCreate, actor: str) -> s.Run:
        return await self.store.create_run(data, actor)

    async def set_run_status(
        self, run_id: UUID, update: s.RunStatusUpdate, actor: str
    ) -> s.RunSummary:
        before, run = await self.store.set_run_status(run_id, update, actor)
        if before != run.status:
            self._run_hooks(run)
        return run

    async def cancel_run(self, run_id: UUID, actor: str) -> s.RunSummary:
        cancel = s.RunStatusUpdate(status=RunStatus.CANCELLED)
        return await self.set_run_status(run_id, cancel, actor)

    async def get_run(self, run_id: UUID, attempt: int | None = None) -> s.Run:
        """The run (on an earlier ``attempt``: as that attempt ended); one whose driver stopped
        renewing its lease is closed failed first."""
        run = await self.store.get_run(run_id, attempt)
        lapsed = run.status in OPEN and run.lease_expires_at is not None and run.lease_expires_at < utcnow()
        if lapsed and await self._close_lapsed(run_id) is not None:
            run = await self.store.get_run(run_id, attempt)
        return run

    async def rerun(self, run_id: UUID, data: s.RerunCreate, actor: str) -> s.Run:
        """The finished run's next attempt (pending; 409 while an attempt is open)."""
        return await self.store.rerun(run_id, data.only_failed, actor)

    async def renew_lease(self, run_id: UUID, renewal: s.LeaseRenewal, actor: str) -> s.RunSummary:
        return await self.store.renew_lease(run_id, renewal, actor)

    async def close_lapsed_runs(self) -> list[s.RunSummary]:
        """Close every open run whose lease lapsed (failed: "its driver stopped")."""
        closed = []
        for run_id in await self.store.lapsed_runs():
            run = await self._close_lapsed(run_id)
            if run is not None:
                closed.append(run)
        return closed

    async def _close_lapsed(self, run_id: UUID) -> s.RunSummary | None:
        run = await self.store.close_lapsed_run(run_id, LEASE_SWEEPER)
        if run is not None:
            log.warning("run %s closed failed: %s", run_id, run.error)
            self._run_hooks(run)
        return run

    def _run_hooks(self, run: s.RunSummary) -> None:
        info = PipelineRunInfo(
            id=str(run.id), repository=run.repository, commit=run.commit_sha, status=run.status,
            branch=run.branch, tag=run.tag, started_at=run.started_at, finished_at=run.completed_at,
        )
        if run.status == RunStatus.RUNNING:
            self.notify("forge_pipeline_run_started", run=info)
        elif run.status in s.FINAL_STATUSES:
            self.notify("forge_pipeline_run_finished", run=info)

    # --- releases -------------------------------------------------------------------------------

    async def create_release(self, data: s.ReleaseCreate, actor: str) -> s.Release:
        release = await self.store.create_release(data, actor)
        self.notify(
            "forge_release_created",
            release=ReleaseInfo(
                id=str(release.id), repository=release.repository, project=release.project,
                number=release.release_number, commit=release.commit_sha,
                aliases=tuple(a.alias for a in release.aliases), oci_uri=release.oci_uri,
            ),
        )
        return release

    # --- deployments and approvals --------------------------------------------------------------

    async def environments(self, repository: str) -> s.RepositoryEnvironments:
        """The environments that drive ``repository``'s deployments and promotions: repo.cue's
        block recorded with its newest planned run, else the documented defaults."""
        block, run_id = await self.store.repository_environments(repository)
        environments = block or DEFAULT_ENVIRONMENTS
        return s.RepositoryEnvironments(
            repository=repository, source="repo.cue" if block else "defaults", run_id=run_id if block else None,
            environments=[_environment_info(e, protected=self._protected(e, block)) for e in environments.ordered],
        )

    def _protected(self, environment: Environment, block: Environments | None) -> bool:
        """A direct deployment needs an approval: the platform protects the environment, or the
        repository's block asks approvals for promotions to it."""
        return environment.name in self.policy.protected_environments or (
            block is not None and environment.approval.required > 0)

    async def check_environment(self, environment: str, repository: str) -> s.RepositoryEnvironments:
        """``environment`` must be one of the repository's: its repo.cue block's when it has one,
        else the platform's (``FORGE_API__ENVIRONMENTS``)."""
        found = await self.environments(repository)
        known = found.names if found.source == "repo.cue" else list(self.policy.environments)
        if environment not in known:
            where = "its repo.cue" if found.source == "repo.cue" else "the platform (FORGE_API__ENVIRONMENTS)"
            raise InvalidRequest(
                f"unknown environment {environment!r} for {repository}; known to {where}: {', '.join(known)}",
                where="environment",
                details={"environments": known, "source": found.source},
            )
        return found

    async def _repository_of(self, release_id: UUID) -> str:
        return (await self.store.get_release_by_id(release_id)).repository

    async def create_deployment(self, data: s.DeploymentCreate, actor: str) -> s.Deployment:
        found = await self.check_environment(data.environment, await self._repository_of(data.release_id))
        protected = data.environment in self.policy.protected_environments or any(
            e.protected for e in found.environments if e.name == data.environment)
        deployment, previous = await self.store.create_deployment(data, actor, approval_required=protected)
        self.notify(
            "forge_deployment_changed",
            deployment=_deployment_info(deployment),
            previous=_deployment_info(previous) if previous else None,
        )
        return deployment

    async def set_deployment_status(
        self, deployment_id: UUID, data: s.DeploymentStatusUpdate, actor: str
    ) -> s.Deployment:
        deployment, previous = await self.store.set_deployment_status(deployment_id, data, actor)
        self.notify(
            "forge_deployment_changed",
            deployment=_deployment_info(deployment),
            previous=_deployment_info(previous) if previous else None,
        )
        return deployment

    async def create_approval(
        self, data: s.ApprovalCreate, actor: str, *, roles: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> s.Approval:
        await self.check_environment(data.environment, await self._repository_of(data.release_id))
        return await self.store.create_approval(data, actor, roles=roles, groups=groups)

    # --- promotions and rollbacks ---------------------------------------------------------------

    async def promote(self, data: s.PromotionCreate, actor: str) -> s.Promotion:
        """Promote one release of each project to an environment under the repository's rules
        (``repo.cue``'s environments, recorded with the release's run; else the defaults): all or
        none. Refused: AuthorizationFailed naming each blocking rule, nothing created."""
        for repository in sorted({r.repository for r in data.releases}):
            await self.check_environment(data.environment, repository)
        check_each_project_once([(r.repository, r.project) for r in data.releases])
        wanted = [(r.repository, r.project, r.release) for r in data.releases]  # None: from the source
        decision, deployments = await self.store.promote(
            data.environment, wanted, actor, promotion.promotion(data.environment, actor),
            dry_run=data.dry_run, action="promotion",
        )
        return self._carried_out("promotion", decision, deployments, dry_run=data.dry_run)

    async def roll_back(self, data: s.RollbackCreate, actor: str) -> s.Promotion:
        """Deploy an older release that ran in the environment before (default: the one before
        the active one), checked by the rollback rules."""
        await self.check_environment(data.environment, data.repository)
        wanted = [(data.repository, data.project, data.release)]
        decision, deployments = await self.store.promote(
            data.environment, wanted, actor, promotion.rollback(data.environment),
            dry_run=data.dry_run, action="rollback",
        )
        return self._carried_out("rollback", decision, deployments, dry_run=data.dry_run)

    def _carried_out(
        self, kind: str, decision: GroupDecision, deployments: list[s.Deployment], *, dry_run: bool
    ) -> s.Promotion:
        if not decision.allowed and not dry_run:
            blocking = {project: [rule.name for rule in rules] for project, rules in decision.blocking.items()}
            raise AuthorizationFailed(
                decision.explain(),
                where="environment",
                details={"blocking": blocking, "decision": decision.model_dump(mode="json")},
            )
        for deployment in deployments:
            self.notify("forge_deployment_changed", deployment=_deployment_info(deployment), previous=None)
        return s.Promotion(
            environment=decision.environment, kind=kind, allowed=decision.allowed, dry_run=dry_run,
            explanation=decision.explain(), decision=decision, deployments=deployments,
        )


def _environment_info(environment: Environment, *, protected: bool) -> s.EnvironmentInfo:
    approval = environment.approval
    return s.EnvironmentInfo(
        name=environment.name, promoted_from=environment.from_, auto_deploy=environment.auto_deploy,
        triggers=sorted(environment.triggers), branches=list(environment.branches),
        approvals_required=approval.required, approval_roles=sorted(approval.roles),
        approval_groups=sorted(approval.groups),
        approval_expiry_seconds=approval.expiry.total_seconds() if approval.expiry else None,
        self_approval=approval.self_approval, protected=protected,
    )


def _deployment_info(deployment: s.Deployment) -> DeploymentInfo:
    return DeploymentInfo(
        id=str(deployment.id),
        environment=deployment.environment,
        repository=deployment.repository,
        project=deployment.project,
        release_id=str(deployment.release_id),
        status=deployment.status.value,
    )
