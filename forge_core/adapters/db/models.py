"""The tables of the Platform API (SQLAlchemy 2 typed models), per the domain model.

Every table is created by an Alembic migration in ``forge_core/migrations``; a change here needs a
new revision there (``tests/api`` checks the two agree).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


SERIAL = BigInteger().with_variant(Integer, "sqlite")
"""A 64-bit sequence; SQLite auto-increments only an INTEGER primary key."""


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Repository(Base):
    """The one spelling a repository is stored and shown in: the case it was first seen in.

    GitHub ignores case in ``owner/name``; every row of every table names a repository in the
    spelling recorded here under its key (the lower-cased name), so the tables' own unique rules
    (one run per commit, one release numbering) hold whatever case a caller writes."""

    __tablename__ = "repositories"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (
        UniqueConstraint("repository", "commit_sha", name="uq_pipeline_runs_repository_commit"),
        Index("ix_pipeline_runs_repository_branch_created", "repository", "branch", "created_at"),
        Index("ix_pipeline_runs_status_started", "status", "started_at"),
        Index("ix_pipeline_runs_unclaimed", "status", "claimed_by", "created_at"),
        Index("ix_pipeline_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    repository: Mapped[str] = mapped_column(String(255))
    commit_sha: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255))
    triggered_by: Mapped[str] = mapped_column(String(255))
    trigger_type: Mapped[str] = mapped_column(String(32))
    # Where the commit is fetched from, when the trigger named it (a push webhook's clone_url).
    clone_url: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    argo_workflow_name: Mapped[str | None] = mapped_column(String(255))
    discovery_output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The planned artifacts (ArtifactPlan as JSON); None until the run has a plan.
    plan_artifacts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Which run starter took the run to hand it to the orchestrator, and when (exactly once).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None]
    # Counts the run's changes (its own, its phases', tasks', steps' and artifact records'), bumped
    # under the run's row lock, so the value a change stamps follows commit order.
    progress_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # Who drives the run (host/pid/kind) and until when its lease holds; lapsed: closed failed.
    driver: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    # The attempt the run is on (a re-run is a new attempt of the same run; earlier ones keep their
    # phases, tasks and steps, and a row in run_attempts), and whether it re-runs only failed tasks.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    rerun_only_failed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    phases: Mapped[list[PhaseExecution]] = relationship(
        back_populates="run",
        order_by="[PhaseExecution.group_number, PhaseExecution.phase_name]",
        lazy="raise",
    )


class RunAttempt(Base):
    """An earlier attempt of a run: how it ended (its phases keep their own rows)."""

    __tablename__ = "run_attempts"
    __table_args__ = (UniqueConstraint("pipeline_run_id", "number", name="uq_run_attempts_run_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pipeline_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    only_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    driver: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class PhaseExecution(Base):
    __tablename__ = "phase_executions"
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "attempt", "phase_name", name="uq_phase_executions_run_attempt_phase"),
        Index("ix_phase_executions_run_group", "pipeline_run_id", "group_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pipeline_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    phase_name: Mapped[str] = mapped_column(String(255))
    group_number: Mapped[int] = mapped_column(Integer)
    # a required phase's failure stops the run; rows from before the flag ran that way
    required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The run's change counter when this row last changed (GET /v1/runs/{id}/progress?since=).
    progress_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    run: Mapped[PipelineRun] = relationship(back_populates="phases", lazy="raise")
    tasks: Mapped[list[TaskExecution]] = relationship(
        back_populates="phase", order_by="TaskExecution.project_name", lazy="raise"
    )


class TaskExecution(Base):
    __tablename__ = "task_executions"
    __table_args__ = (
        UniqueConstraint(
            "phase_execution_id", "project_name", name="uq_task_executions_phase_project"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    phase_execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("phase_executions.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    project_name: Mapped[str] = mapped_column(String(255))
    project_path: Mapped[str] = mapped_column(String(1024))
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The run's change counter when this row last changed (GET /v1/runs/{id}/progress?since=).
    progress_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    phase: Mapped[PhaseExecution] = relationship(back_populates="tasks", lazy="raise")
    steps: Mapped[list[StepExecution]] = relationship(
        back_populates="task", order_by="StepExecution.position", lazy="raise"
    )


class StepExecution(Base):
    __tablename__ = "step_executions"
    __table_args__ = (
        UniqueConstraint("task_execution_id", "step_name", name="uq_step_executions_task_step"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    task_execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_executions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(1024), default="")
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # The whole step as planned (StepSpec as JSON: settings, secrets, retries, exact timeout); the
    # columns beside it repeat what queries and constraints need.
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    logs_s3_key: Mapped[str | None] = mapped_column(String(1024))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The run's change counter when this row last changed (GET /v1/runs/{id}/progress?since=).
    progress_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    task: Mapped[TaskExecution] = relationship(back_populates="steps", lazy="raise")


class ArtifactRecord(Base):
    """What the artifact job did with one planned artifact of a run (one row per artifact, replaced
    on every report); the release job turns a successful one into a ReleaseArtifact."""

    __tablename__ = "artifact_records"
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "project", "artifact", name="uq_artifact_records_run_artifact"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pipeline_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True
    )
    project: Mapped[str] = mapped_column(String(128))
    artifact: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(128))
    tracking_oci_uri: Mapped[str | None] = mapped_column(String(2048))
    tracking_oci_digest: Mapped[str | None] = mapped_column(String(128))
    primary_published_uri: Mapped[str | None] = mapped_column(String(2048))
    # Each target's outcome (ArtifactTarget as JSON), in the artifact's publisher order.
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The run's change counter when this row last changed (GET /v1/runs/{id}/progress?since=).
    progress_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class ReleaseCounter(Base):
    """The last release number of a project; its row lock makes numbering gapless."""

    __tablename__ = "release_counters"

    repository: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("repository", "project", "commit_sha", name="uq_releases_canonical"),
        UniqueConstraint("repository", "project", "release_number", name="uq_releases_number"),
        Index("ix_releases_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    repository: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(128))
    commit_sha: Mapped[str] = mapped_column(String(64))
    release_number: Mapped[int] = mapped_column(Integer)
    pipeline_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pipeline_runs.id"), index=True
    )
    oci_uri: Mapped[str | None] = mapped_column(String(2048))
    oci_digest: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    aliases: Mapped[list[ReleaseAlias]] = relationship(order_by="ReleaseAlias.alias", lazy="raise")
    artifacts: Mapped[list[ReleaseArtifact]] = relationship(
        order_by="ReleaseArtifact.artifact_name", lazy="raise"
    )
    trigger: Mapped[ReleaseTrigger | None] = relationship(lazy="raise")


class ReleaseAlias(Base):
    """An alias names one release of a project at a time (moving it re-points the row)."""

    __tablename__ = "release_aliases"
    __table_args__ = (
        UniqueConstraint("release_id", "alias", name="uq_release_aliases_release_alias"),
        UniqueConstraint("repository", "project", "alias", name="uq_release_aliases_project_alias"),
        Index("ix_release_aliases_alias_type", "alias", "alias_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    repository: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(128))
    alias: Mapped[str] = mapped_column(String(128))
    alias_type: Mapped[str] = mapped_column(String(16))


class ReleaseTrigger(Base):
    __tablename__ = "release_triggers"

    release_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True
    )
    trigger_type: Mapped[str] = mapped_column(String(16))
    branch: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255))
    triggered_by: Mapped[str] = mapped_column(String(255))
    triggered_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleaseArtifact(Base):
    __tablename__ = "release_artifacts"
    __table_args__ = (
        UniqueConstraint("release_id", "artifact_name", name="uq_release_artifacts_release_name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    artifact_name: Mapped[str] = mapped_column(String(128))
    artifact_type: Mapped[str] = mapped_column(String(64))
    tracking_oci_uri: Mapped[str] = mapped_column(String(2048))
    tracking_oci_digest: Mapped[str | None] = mapped_column(String(128))
    primary_published_uri: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleaseApproval(Base):
    __tablename__ = "release_approvals"
    __table_args__ = (
        Index("ix_release_approvals_release_env", "release_id", "environment"),
        Index("ix_release_approvals_approver_at", "approver", "approved_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str] = mapped_column(String(255))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    # What the approver held when approving: an approval policy may ask for a role or group.
    approver_roles: Mapped[list[str] | None] = mapped_column(JSON)
    approver_groups: Mapped[list[str] | None] = mapped_column(JSON)


class Deployment(Base):
    """``repository`` and ``project`` repeat the release's so that the partial unique index can
    allow at most one active deployment per (environment, repository, project)."""

    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_env_release", "environment", "release_id"),
        Index("ix_deployments_env_status", "environment", "status"),
        Index("ix_deployments_release_env", "release_id", "environment"),
        Index(
            "uq_deployments_one_active",
            "environment",
            "repository",
            "project",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id"))
    repository: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("release_approvals.id"))
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str] = mapped_column(String(255))
    gitops_commit_sha: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)  # why a failed deployment failed

    release: Mapped[Release] = relationship(lazy="raise")


class OutboxMessage(Base):
    """A notification to deliver (commit statuses); written in the transaction of its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "key", "id"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Who changed what, when: written in the same transaction as the change."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
