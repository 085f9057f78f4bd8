"""a run records who drives it and until when its lease holds (a lapsed lease closes it failed),
and which attempt it is on: a re-run is a new attempt of the same run, earlier attempts keep their
phases, tasks and steps (phase_executions.attempt) and a summary row in run_attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('driver', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(
            sa.Column('rerun_only_failed', sa.Boolean(), server_default=sa.text('false'), nullable=False)
        )
        batch_op.create_index('ix_pipeline_runs_status_lease', ['status', 'lease_expires_at'], unique=False)
    with op.batch_alter_table('phase_executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.drop_constraint('uq_phase_executions_run_phase', type_='unique')
        batch_op.create_unique_constraint(
            'uq_phase_executions_run_attempt_phase', ['pipeline_run_id', 'attempt', 'phase_name']
        )
    op.create_table(
        'run_attempts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('pipeline_run_id', sa.Uuid(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('only_failed', sa.Boolean(), nullable=False),
        sa.Column('driver', sa.String(length=255), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['pipeline_run_id'], ['pipeline_runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('pipeline_run_id', 'number', name='uq_run_attempts_run_number'),
    )


def downgrade() -> None:
    op.drop_table('run_attempts')
    with op.batch_alter_table('phase_executions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_phase_executions_run_attempt_phase', type_='unique')
        batch_op.create_unique_constraint('uq_phase_executions_run_phase', ['pipeline_run_id', 'phase_name'])
        batch_op.drop_column('attempt')
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_pipeline_runs_status_lease')
        batch_op.drop_column('rerun_only_failed')
        batch_op.drop_column('attempt')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('driver')
