"""The persistence the use cases need, one narrow port per aggregate; the SQLAlchemy adapter
(:mod:`forge_core.adapters.db`) implements each, and :class:`Store` is all of them.

Every method is one transaction. Methods that change state also write the audit log entry (and,
for runs, the outbox row of the commit status) in that same transaction, so either all of it is
stored or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from forge_core.domain.models import RunStatus
from forge_core.domain.promotion import Environments, GroupDecision
from forge_core.domain.run_plan import RunPlan
from forge_core.services import schemas as s
from forge_core.services.promotion import Decide
from forge_core.services.scope import Owned


class Reachable(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...


class RunStore(Protocol):
    """Pipeline runs and their phases, tasks and steps."""

    async def run_counts(self) -> dict[str, int]: ...
    async def create_run(self, data: s.RunCreate, actor: str) -> s.Run: ...
    async def find_run(self, repository: str, commit_sha: str) -> s.Run | None: ...
    async def get_run(self, run_id: UUID, attempt: int | None = None) -> s.Run: ...
    async def rerun(self, run_id: UUID, only_failed: bool, actor: str) -> s.Run: ...
    async def run_progress(self, run_id: UUID) -> s.RunProgress:
        """Status, error, exit code and times of the run and of each phase, task and step, without
        building the run (cheap enough for the console's live page to poll)."""
        ...

    async def run_step(self, run_id: UUID, step_id: UUID) -> s.Progress | None:
        """One step of the run, of any attempt; None when the run has no such step."""
        ...

    async def run_changes(self, run_id: UUID, since: int) -> s.RunChanges:
        """What changed in the run after cursor ``since`` (every change counts the run's cursor up,
        in commit order): cost proportional to the changes, not to the run."""
        ...

    async def list_runs(
        self, page: s.Page, *, repository: str | None, branch: str | None, status: RunStatus | None
    ) -> s.RunList: ...
    async def record_plan(self, run_id: UUID, plan: RunPlan, actor: str) -> s.RecordedPlan: ...
    async def set_run_status(
        self, run_id: UUID, update: s.RunStatusUpdate, actor: str
    ) -> tuple[RunStatus, s.RunSummary]:
        """Returns the status before and the run after."""
        ...

    async def renew_lease(self, run_id: UUID, renewal: s.LeaseRenewal, actor: str) -> s.RunSummary: ...
    async def lapsed_runs(self, limit: int = 100) -> list[UUID]: ...
    async def close_lapsed_run(self, run_id: UUID, actor: str) -> s.RunSummary | None: ...
    async def set_phase_status(
        self, phase_id: UUID, update: s.PhaseStatusUpdate, actor: str
    ) -> None: ...
    async def set_task_status(
        self, task_id: UUID, update: s.TaskStatusUpdate, actor: str
    ) -> None: ...
    async def set_step_status(
        self, step_id: UUID, update: s.StepStatusUpdate, actor: str
    ) -> None: ...
    async def set_statuses(self, changes: Sequence[s.EntityStatusUpdate], actor: str) -> None:
        """Apply task and step status changes in order, in one transaction: all or none (the
        first refused change raises, as its single call would)."""
        ...

    async def record_artifact(
        self, run_id: UUID, project: str, artifact: str, update: s.ArtifactRecordUpdate, actor: str
    ) -> s.ArtifactRecord:
        """Create or replace the record of one planned artifact of a run (idempotent)."""
        ...

    async def get_artifact_record(self, run_id: UUID, project: str, artifact: str) -> s.ArtifactRecord: ...


class ReleaseStore(Protocol):
    """Releases with their aliases, trigger and artifacts."""

    async def create_release(self, data: s.ReleaseCreate, actor: str) -> s.Release: ...
    async def get_release(self, repository: str, project: str, ref: str) -> s.Release: ...
    async def get_release_by_id(self, release_id: UUID) -> s.Release: ...
    async def list_releases(self, repository: str, project: str | None, page: s.Page) -> s.ReleaseList:
        """A project's releases, newest first (every project's when ``project`` is None)."""
        ...
    async def set_alias(
        self, repository: str, project: str, alias: str, data: s.AliasSet, actor: str
    ) -> s.Release: ...
    async def delete_alias(self, repository: str, project: str, alias: str, actor: str) -> None: ...
    async def set_release_image(
        self, repository: str, project: str, ref: str, data: s.ReleaseImageSet, actor: str
    ) -> s.Release: ...


class DeploymentStore(Protocol):
    """Deployments of releases to environments."""

    async def create_deployment(
        self, data: s.DeploymentCreate, actor: str, *, approval_required: bool
    ) -> tuple[s.Deployment, s.Deployment | None]:
        """Returns the new deployment and the one it superseded (none when it is pending)."""
        ...

    async def set_deployment_status(
        self, deployment_id: UUID, data: s.DeploymentStatusUpdate, actor: str
    ) -> tuple[s.Deployment, s.Deployment | None]:
        """A pending deployment becomes active (superseding the active one, returned) or failed;
        the same report again returns the same answer; any other change is a Conflict."""
        ...

    async def current_deployment(
        self, environment: str, repository: str, project: str
    ) -> s.Deployment: ...
    async def list_deployments(
        self, repository: str, page: s.Page, *, project: str | None, environment: str | None,
        statuses: Sequence[s.DeploymentStatus],
    ) -> s.DeploymentList:
        """A repository's deployments, newest first (of any status when ``statuses`` is empty)."""
        ...
    async def deployment_history(
        self, environment: str, repository: str, project: str, page: s.Page
    ) -> s.DeploymentList: ...


class PromotionStore(Protocol):
    """Promotions and rollbacks: decided and carried out in one transaction."""

    async def repository_environments(self, repository: str) -> tuple[Environments | None, UUID | None]:
        """The environments block recorded with the repository's newest run that has a plan, and
        that run's id; (None, run id) when its repo.cue had none, (None, None) with no planned run."""
        ...

    async def promote(
        self,
        environment: str,
        releases: Sequence[tuple[str, str, str | None]],
        actor: str,
        decide: Decide,
        *,
        dry_run: bool,
        action: str,
    ) -> tuple[GroupDecision, list[s.Deployment]]:
        """Each ``(repository, project, release ref)`` is read with its facts, locked per project
        (a None ref: for a ``rollback`` the release that ran in ``environment`` before the active
        one; for a ``promotion`` the one active where ``environment`` is promoted from); the
        decision is taken in the transaction; if allowed and not ``dry_run`` a pending deployment
        of each is created, all or none. Returns the decision and the deployments created."""
        ...


class ApprovalStore(Protocol):
    """Approvals of a release for an environment."""

    async def create_approval(
        self, data: s.ApprovalCreate, actor: str, *, roles: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> s.Approval:
        """``roles`` and ``groups``: what the approver holds (kept for approval policies); an
        author approving their own release is refused unless the environment's policy allows it."""
        ...
    async def revoke_approval(self, approval_id: UUID, actor: str) -> s.Approval: ...
    async def active_approval(self, release_id: UUID, environment: str) -> s.Approval: ...
    async def list_approvals(
        self, page: s.Page, *, release_id: UUID | None, environment: str | None
    ) -> s.ApprovalList: ...


class OwnerStore(Protocol):
    """Which repository an entity belongs to, for the token-scope check before any handler."""

    async def repository_of(self, kind: Owned, entity_id: UUID) -> str | None:
        """The entity's repository (a phase's, task's or step's is its run's; an approval's
        is its release's); None if there is no such entity."""
        ...


class OutboxStore(Protocol):
    """The commit statuses waiting to be delivered."""

    def outbox_turn(self) -> AbstractAsyncContextManager[bool]:
        """Whether this sender may deliver now: one sender at a time keeps each commit's order."""
        ...

    async def claim_outbox(self, now: datetime, limit: int) -> list[s.OutboxMessage]:
        """The oldest undelivered message of each key that is due (later ones of a key wait)."""
        ...

    async def outbox_delivered(self, message_id: int, now: datetime) -> None: ...
    async def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None: ...
    async def outbox_pending(self) -> int: ...

    async def purge_delivered(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` messages delivered before ``before``; returns how many went."""
        ...


class RunClaimStore(Protocol):
    """Who hands a new run to the orchestrator: one claimant per run, durable in the database."""

    async def claim_run(
        self, owner: str, now: datetime, stale_before: datetime, limit: int = 10
    ) -> s.RunSummary | None:
        """Take the oldest pending run nobody claimed (or whose claim is older than
        ``stale_before``) for ``owner``; None when there is none. Two callers never get one run."""
        ...


class Store(
    Reachable,
    RunStore,
    ReleaseStore,
    DeploymentStore,
    PromotionStore,
    ApprovalStore,
    OwnerStore,
    OutboxStore,
    RunClaimStore,
    Protocol,
):
    """Every port over one database (what :class:`forge_core.services.platform.Platform` is given)."""
