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
from forge_core.domain.promotion import GroupDecision
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

    def check_environment(self, environment: str) -> None:
        if environment not in self.policy.environments:
            raise InvalidRequest(
                f"unknown environment {environment!r}; "
                f"known: {', '.join(self.policy.environments)}",
                where="environment",
                details={"environments": list(self.policy.environments)},
            )

    async def create_deployment(self, data: s.DeploymentCreate, actor: str) -> s.Deployment:
        self.check_environment(data.environment)
        deployment, previous = await self.store.create_deployment(
            data, actor, approval_required=data.environment in self.policy.protected_environments
        )
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
        self.check_environment(data.environment)
        return await self.store.create_approval(data, actor, roles=roles, groups=groups)

    # --- promotions and rollbacks ---------------------------------------------------------------

    async def promote(self, data: s.PromotionCreate, actor: str) -> s.Promotion:
        """Promote one release of each project to an environment under the repository's rules
        (``repo.cue``'s environments, recorded with the release's run; else the defaults): all or
        none. Refused: AuthorizationFailed naming each blocking rule, nothing created."""
        self.check_environment(data.environment)  # the platform's clusters; repo.cue rules over them
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
        self.check_environment(data.environment)
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


def _deployment_info(deployment: s.Deployment) -> DeploymentInfo:
    return DeploymentInfo(
        id=str(deployment.id),
        environment=deployment.environment,
        repository=deployment.repository,
        project=deployment.project,
        release_id=str(deployment.release_id),
        status=deployment.status.value,
    )
