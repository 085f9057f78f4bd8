"""What the Platform API takes and returns: one pydantic model per shape, shared by the API, the
store and the platform client. Inputs forbid unknown fields so a typo is an error, not a no-op."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from forge_core.domain.models import RunStatus

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


class RunCreate(Input):
    repository: Repository
    commit_sha: CommitSha
    branch: Name | None = None
    tag: Name | None = None
    triggered_by: Name
    trigger_type: TriggerType = TriggerType.MANUAL


class StepPlan(Input):
    name: Name
    action: Name
    target: Annotated[str, StringConstraints(max_length=1024)] = ""
    timeout_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] | None = None


class TaskPlan(Input):
    key: Name
    project_name: Name
    project_path: Annotated[str, StringConstraints(max_length=1024)]
    steps: Annotated[list[StepPlan], Field(max_length=1000)] = []


class PhasePlan(Input):
    name: Name
    group_number: Annotated[int, Field(ge=0, le=100000)]
    required: bool = Field(True, description="Its failure stops the run (a plan that does not say is strict).")
    tasks: Annotated[list[TaskPlan], Field(max_length=10000)] = []


class RunPlan(Input):
    phases: Annotated[list[PhasePlan], Field(max_length=1000)]


class RunStatusUpdate(Input):
    status: RunStatus
    error: Text | None = None


class PhaseStatusUpdate(Input):
    status: RunStatus


class TaskStatusUpdate(Input):
    status: RunStatus
    error: Text | None = None


class StepStatusUpdate(Input):
    status: RunStatus
    exit_code: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | None = None
    logs_s3_key: Annotated[str, StringConstraints(max_length=1024)] | None = None


class Step(Output):
    id: UUID
    name: str
    action: str
    target: str
    timeout_seconds: int | None
    status: RunStatus
    exit_code: int | None
    logs_s3_key: str | None
    started_at: datetime | None
    completed_at: datetime | None


class Task(Output):
    id: UUID
    key: str
    project_name: str
    project_path: str
    status: RunStatus
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    steps: list[Step]


class Phase(Output):
    id: UUID
    name: str
    group_number: int
    required: bool = True
    status: RunStatus
    started_at: datetime | None
    completed_at: datetime | None
    tasks: list[Task]


class RecordedPlan(Output):
    phases: list[Phase]


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


class Run(RunSummary):
    phases: list[Phase]


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
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


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


class ApprovalStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


Environment = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class DeploymentCreate(Input):
    release_id: UUID
    environment: Environment
    approval_id: UUID | None = None
    gitops_commit_sha: CommitSha | None = None


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
