"""What the Platform API takes and returns: one pydantic model per shape, shared by the API, the
store and the platform client. Inputs forbid unknown fields so a typo is an error, not a no-op."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from forge_core.domain.models import RunStatus
from forge_core.domain.promotion import Environments, GroupDecision
from forge_core.domain.run_plan import ArtifactPlan, PhasePlan, RunPlan, StepPlan, TaskPlan
from forge_core.services.errors import InvalidRequest

Name = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
Repository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=255)
]
CommitSha = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{7,64}$"),
    AfterValidator(str.lower),
]
Text = Annotated[str, StringConstraints(max_length=65536)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
CLONE_SCHEMES = ("https", "http", "ssh", "git", "file")


def _clone_url(value: str) -> str:
    """A clone URL the run's repository is fetched from; never one carrying a password (it would
    be stored with the run and shown to every reader)."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in CLONE_SCHEMES:
        raise ValueError(f"a clone URL starts with one of {', '.join(s + '://' for s in CLONE_SCHEMES)}")
    if parts.password is not None:
        raise ValueError("a clone URL must not carry a password (give git its credentials instead)")
    return value


CloneUrl = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_clone_url)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it on every backend alike.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("NUL characters are not allowed")
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TriggerType(enum.StrEnum):
    PUSH = "push"
    PULL_REQUEST = "pull_request"
    TAG = "tag"
    MANUAL = "manual"


FINAL_STATUSES = frozenset(
    {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
)


# --- runs -------------------------------------------------------------------------------------

MAX_NAME, MAX_PATH = 255, 1024
MAX_PHASES, MAX_TASKS, MAX_STEPS, MAX_ARTIFACTS = 1000, 10000, 1000, 10000
MAX_STEP_TIMEOUT = timedelta(days=7)


def check_plan(plan: RunPlan) -> None:
    """What the tables need of a plan the model cannot say: sizes, no ids yet, no NUL anywhere."""
    _no_nul(plan.model_dump(mode="json"), "")
    _at_most(plan.phases, MAX_PHASES, "phases")
    _at_most(plan.artifacts, MAX_ARTIFACTS, "artifacts")
    for i, phase in enumerate(plan.phases):
        where = f"phases.{i}"
        _unrecorded(phase.id, where)
        _name(phase.name, f"{where}.name")
        if not 0 <= phase.group_number <= 100000:
            raise InvalidRequest("group_number is between 0 and 100000", where=f"{where}.group_number")
        _at_most(phase.tasks, MAX_TASKS, f"{where}.tasks")
        for j, task in enumerate(phase.tasks):
            at = f"{where}.tasks.{j}"
            _unrecorded(task.id, at)
            _name(task.key, f"{at}.key")
            _name(task.project_name, f"{at}.project_name")
            _name(task.project_path, f"{at}.project_path", MAX_PATH, empty=True)
            _timeout(task.timeout, f"{at}.timeout")
            _at_most(task.steps, MAX_STEPS, f"{at}.steps")
            for k, step in enumerate(task.steps):
                here = f"{at}.steps.{k}"
                _unrecorded(step.id, here)
                _name(step.name, f"{here}.name")
                _name(step.action, f"{here}.action")
                _name(step.target, f"{here}.target", MAX_PATH, empty=True)
                _timeout(step.timeout, f"{here}.timeout")


def _no_nul(value: Any, where: str) -> None:
    # PostgreSQL cannot store NUL in text; refuse it on every backend alike.
    if isinstance(value, str) and "\x00" in value:
        raise InvalidRequest("NUL characters are not allowed", where=where.lstrip("."))
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, f"{where}.{key!s}")
            _no_nul(item, f"{where}.{key!s}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_nul(item, f"{where}.{index}")


def _at_most(items: tuple[Any, ...], limit: int, where: str) -> None:
    if len(items) > limit:
        raise InvalidRequest(f"at most {limit} entries ({len(items)} given)", where=where)


def _unrecorded(entity_id: str | None, where: str) -> None:
    if entity_id is not None:
        raise InvalidRequest("ids are assigned by the API when it records the plan", where=f"{where}.id")


def _timeout(limit: timedelta | None, where: str) -> None:
    if limit is not None and not timedelta(0) < limit <= MAX_STEP_TIMEOUT:
        raise InvalidRequest("a timeout is more than 0 s and at most 7 days", where=where)


def _name(value: str, where: str, limit: int = MAX_NAME, *, empty: bool = False) -> None:
    if not (empty or value.strip()):
        raise InvalidRequest("must not be empty", where=where)
    if len(value) > limit:
        raise InvalidRequest(f"at most {limit} characters ({len(value)} given)", where=where)



class RunCreate(Input):
    repository: Repository
    commit_sha: CommitSha
    branch: Name | None = None
    tag: Name | None = None
    triggered_by: Name
    trigger_type: TriggerType = TriggerType.MANUAL
    clone_url: CloneUrl | None = None
    """Where the commit is fetched from (a push webhook's ``repository.clone_url``); unset, the
    server's per-repository setting decides."""


class RunStatusUpdate(Input):
    status: RunStatus
    error: Text | None = None


class LeaseRenewal(Input):
    """The driver of a run holds its lease ``ttl_seconds`` more (from the API's clock)."""

    driver: Name
    ttl_seconds: Annotated[float, Field(gt=0, le=86400)]


class PhaseStatusUpdate(Input):
    status: RunStatus


class TaskStatusUpdate(Input):
    status: RunStatus
    error: Text | None = None


class StepStatusUpdate(Input):
    status: RunStatus
    exit_code: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | None = None
    logs_s3_key: Annotated[str, StringConstraints(max_length=1024)] | None = None


EntityStatusUpdate = tuple[UUID, TaskStatusUpdate | StepStatusUpdate]
"""One change of a batch recorded in one transaction: a task's (TaskStatusUpdate) or a step's."""


class Step(StepPlan):
    """A recorded step: the step as planned (every field as written in CUE), and how it went."""

    id: str
    status: RunStatus
    exit_code: int | None
    logs_s3_key: str | None
    started_at: datetime | None
    completed_at: datetime | None


class Task(TaskPlan):
    id: str
    status: RunStatus
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    steps: tuple[Step, ...] = ()


class Phase(PhasePlan):
    id: str
    status: RunStatus
    started_at: datetime | None
    completed_at: datetime | None
    tasks: tuple[Task, ...] = ()


class RecordedPlan(RunPlan):
    """The plan as the API recorded it: with ids, and the status of every phase, task and step."""

    phases: tuple[Phase, ...] = ()
    # Kept with the run for its releases' promotions; not echoed back.
    environments: Environments | None = Field(default=None, exclude=True)


class RunSummary(Output):
    id: UUID
    repository: str
    commit_sha: str
    branch: str | None
    tag: str | None
    status: RunStatus
    triggered_by: str
    trigger_type: TriggerType
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    clone_url: str | None = None
    driver: str | None = None
    lease_expires_at: datetime | None = None
    attempt: int = 1


# --- artifact records: what the artifact job did with each planned artifact ------------------


class ArtifactStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class TargetOutcome(enum.StrEnum):
    """What happened at one publish target: ``planned`` (where it would go, nothing contacted),
    ``published``, ``not_planned`` (the publisher cannot plan; ``--publish`` runs it), ``failed``."""

    PLANNED = "planned"
    PUBLISHED = "published"
    NOT_PLANNED = "not_planned"
    FAILED = "failed"


Digest = Annotated[str, StringConstraints(max_length=128)]


class ArtifactTarget(Input):
    """One target of an artifact (a publisher of ``repo.cue``) and its outcome."""

    publisher: Name
    type: Name
    outcome: TargetOutcome
    uri: Uri | None = None
    digest: Digest | None = None
    error: Text | None = None
    note: Text | None = None
    """Why a target was neither planned nor published (``not_planned``), for people."""


class ArtifactRecordUpdate(Input):
    """``PUT /v1/runs/{run_id}/artifacts/{project}/{artifact}``: the whole record, replacing the
    previous one (idempotent). The release job turns a successful record into the release's
    :class:`ArtifactIn` (``tracking_oci_uri``, ``tracking_oci_digest``, ``primary_published_uri``)."""

    type: Name
    status: ArtifactStatus
    error: Text | None = None
    digest: Digest | None = None
    tracking_oci_uri: Uri | None = None
    tracking_oci_digest: Digest | None = None
    primary_published_uri: Uri | None = None
    targets: Annotated[list[ArtifactTarget], Field(max_length=100)] = []


class ArtifactRecord(Output):
    project: str
    artifact: str
    type: str
    status: ArtifactStatus
    error: str | None = None
    digest: str | None = None
    tracking_oci_uri: str | None = None
    tracking_oci_digest: str | None = None
    primary_published_uri: str | None = None
    targets: list[ArtifactTarget] = []
    updated_at: datetime

    def published(self, publisher: str, digest: str | None) -> bool:
        """Whether target ``publisher`` already holds this artifact with ``digest``."""
        return digest is not None and any(
            t.publisher == publisher and t.outcome is TargetOutcome.PUBLISHED and t.digest == digest
            for t in self.targets
        )


class Attempt(Output):
    """An earlier attempt of a run, as it ended (``GET /v1/runs/{id}?attempt=N``: its phases)."""

    number: int
    status: RunStatus
    error: str | None
    only_failed: bool
    driver: str | None
    started_at: datetime | None
    completed_at: datetime | None


class RerunCreate(Input):
    """Re-run a finished run as its next attempt: only the tasks that did not succeed (the
    others' results are carried over), or every task."""

    only_failed: bool = True


class Run(RunSummary):
    phases: list[Phase]
    attempts: list[Attempt] = []
    """The earlier attempts, first to last (the run itself is the current one)."""
    artifacts: list[ArtifactPlan] = []
    artifact_records: list[ArtifactRecord] = []


class Progress(Output):
    """How one part of a run goes: what a live view needs of it (its names and plan aside)."""

    status: RunStatus
    error: str | None = None
    exit_code: int | None = None
    logs_s3_key: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


class RunProgress(Output):
    """The progress of a run and of each of its phases, tasks and steps, by id."""

    run: Progress
    phases: dict[str, Progress]
    tasks: dict[str, Progress]
    steps: dict[str, Progress]


class RunChanges(RunProgress):
    """``GET /v1/runs/{id}/progress?since=N``: what changed in a run after cursor ``N`` — the run's
    progress, and only the phases, tasks, steps and artifact records that changed (all of them
    for ``since=0``) — and the cursor to ask from next time. An id the caller has not seen means
    the plan was recorded meanwhile: read the run (``GET /v1/runs/{id}``) once."""

    cursor: int
    artifact_records: list[ArtifactRecord] = []


class RunList(Output):
    runs: list[RunSummary]
    total: int
    limit: int
    offset: int


# --- releases ---------------------------------------------------------------------------------


class ReleaseTriggerType(enum.StrEnum):
    BRANCH_PUSH = "branch_push"
    TAG = "tag"
    MANUAL = "manual"


class AliasType(enum.StrEnum):
    NUMERIC = "numeric"
    TAG = "tag"
    BRANCH = "branch"
    CUSTOM = "custom"


AliasName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")]
ArtifactName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
ProjectName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class ArtifactIn(Input):
    name: ArtifactName
    type: Name
    tracking_oci_uri: Uri
    tracking_oci_digest: Annotated[str, StringConstraints(max_length=128)] | None = None
    primary_published_uri: Uri


class TriggerIn(Input):
    trigger_type: ReleaseTriggerType = ReleaseTriggerType.MANUAL
    branch: Name | None = None
    tag: Name | None = None


class ReleaseCreate(Input):
    pipeline_run_id: UUID | None = None
    repository: Repository
    project: ProjectName
    commit_sha: CommitSha
    oci_uri: Uri | None = None
    oci_digest: Annotated[str, StringConstraints(max_length=128)] | None = None
    artifacts: Annotated[list[ArtifactIn], Field(max_length=1000)] = []
    trigger: TriggerIn = TriggerIn()


class AliasSet(Input):
    release: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The release the alias points to: its number, commit SHA or another alias."
    )
    alias_type: AliasType = AliasType.CUSTOM


OciDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class ReleaseImageSet(Input):
    """Where a release's Release OCI image is. Set once: the same digest again is a no-op, another refused."""

    oci_uri: Uri
    oci_digest: OciDigest


class Artifact(Output):
    name: str
    type: str
    tracking_oci_uri: str
    tracking_oci_digest: str | None
    primary_published_uri: str


class Alias(Output):
    alias: str
    alias_type: AliasType


class ReleaseTrigger(Output):
    trigger_type: ReleaseTriggerType
    branch: str | None
    tag: str | None
    triggered_by: str
    triggered_at: datetime


class ReleaseSummary(Output):
    id: UUID
    repository: str
    project: str
    commit_sha: str
    release_number: int
    created_at: datetime


class Release(ReleaseSummary):
    canonical_id: str
    pipeline_run_id: UUID | None
    oci_uri: str | None
    oci_digest: str | None
    created_by: str
    artifacts: list[Artifact]
    aliases: list[Alias]
    trigger: ReleaseTrigger | None


class ReleaseList(Output):
    releases: list[ReleaseSummary]
    total: int
    limit: int
    offset: int


# --- deployments and approvals ----------------------------------------------------------------


class DeploymentStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    FAILED = "failed"  # its GitOps commit never landed; ``reason`` says why


class ApprovalStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


Environment = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class DeploymentCreate(Input):
    """``status`` pending: the deployment job commits the pointer, then reports it active (or
    failed) through ``PUT /v1/deployments/{id}/status``; active (the default): it is live now."""

    release_id: UUID
    environment: Environment
    approval_id: UUID | None = None
    gitops_commit_sha: CommitSha | None = None
    status: Literal[DeploymentStatus.PENDING, DeploymentStatus.ACTIVE] = DeploymentStatus.ACTIVE


class DeploymentStatusUpdate(Input):
    """A pending deployment's outcome: ``active`` once its pointer commit landed (the GitOps
    commit required), or ``failed`` with the reason."""

    status: Literal[DeploymentStatus.ACTIVE, DeploymentStatus.FAILED]
    gitops_commit_sha: CommitSha | None = None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=4000)] | None = None

    @model_validator(mode="after")
    def _what_each_needs(self) -> DeploymentStatusUpdate:
        if self.status is DeploymentStatus.ACTIVE and self.gitops_commit_sha is None:
            raise ValueError("an active deployment needs gitops_commit_sha (the pointer commit)")
        if self.status is DeploymentStatus.FAILED and self.reason is None:
            raise ValueError("a failed deployment needs the reason")
        return self


class Deployment(Output):
    id: UUID
    release_id: UUID
    repository: str
    project: str
    release_number: int
    environment: str
    status: DeploymentStatus
    approval_id: UUID | None
    deployed_at: datetime
    deployed_by: str
    gitops_commit_sha: str | None
    reason: str | None = None


class DeploymentList(Output):
    deployments: list[Deployment]
    total: int
    limit: int
    offset: int


class ApprovalCreate(Input):
    release_id: UUID
    environment: Environment
    justification: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    expires_at: datetime | None = None


class Approval(Output):
    id: UUID
    release_id: UUID
    environment: str
    approver: str
    approved_at: datetime
    expires_at: datetime | None
    justification: str
    status: ApprovalStatus


class ApprovalList(Output):
    approvals: list[Approval]
    total: int
    limit: int
    offset: int


# --- promotions and rollbacks -----------------------------------------------------------------

ReleaseRef = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class PromotedRelease(Input):
    repository: Repository
    project: ProjectName
    release: ReleaseRef | None = Field(
        default=None,
        description="The release: its number, commit SHA (or prefix) or alias; none: the one active in "
        "the environment the target is promoted from (the newest release for the first environment).",
    )


class PromotionCreate(Input):
    """Promote one release of each project to ``environment``, all or none. ``dry_run``: only
    decide (every rule with its reason), change nothing."""

    environment: Environment
    releases: Annotated[list[PromotedRelease], Field(min_length=1, max_length=100)]
    dry_run: bool = False


class RollbackCreate(Input):
    """Deploy an older release of ``project`` again; without ``release``, the one that ran in
    ``environment`` before the active one."""

    environment: Environment
    repository: Repository
    project: ProjectName
    release: ReleaseRef | None = None
    dry_run: bool = False


class EnvironmentInfo(Output):
    """One environment of a repository and its promotion rules (``repo.cue``'s, or the defaults')."""

    name: str
    promoted_from: str | None
    auto_deploy: bool
    triggers: list[str]
    branches: list[str]
    approvals_required: int
    approval_roles: list[str]
    approval_groups: list[str]
    approval_expiry_seconds: float | None
    self_approval: bool
    protected: bool
    """A direct deployment here (``POST /v1/deployments``) needs an active approval."""


class RepositoryEnvironments(Output):
    """``GET /v1/environments?repository=``: the environments that drive a repository's deployments
    and promotions, in promotion order. ``source`` is ``repo.cue`` (the block recorded with the
    repository's newest planned run, ``run_id``) or ``defaults`` (no block: the documented defaults)."""

    repository: str
    source: Literal["repo.cue", "defaults"]
    run_id: UUID | None = None
    environments: list[EnvironmentInfo]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.environments]


class Promotion(Output):
    """The decision (each project's rules, allowed or blocked and why) and, when it was carried
    out, the pending deployments it created (the deployment job commits them in one GitOps commit)."""

    environment: str
    kind: str
    allowed: bool
    dry_run: bool
    explanation: str
    decision: GroupDecision
    deployments: list[Deployment]


# --- outbox -----------------------------------------------------------------------------------


class OutboxMessage(Output):
    """A notification waiting in the outbox; ``key`` orders delivery (one commit's in sequence)."""

    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int


class Page(Input):
    limit: Annotated[int, Field(ge=1, le=200)] = 20
    offset: Annotated[int, Field(ge=0, le=10**9)] = 0
