"""the whole run plan: a step's spec, a task's timeout, a phase's required flag, the artifacts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_artifacts', sa.JSON(), nullable=True))
    with op.batch_alter_table('phase_executions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('required', sa.Boolean(), server_default=sa.text('true'), nullable=False)
        )
    with op.batch_alter_table('task_executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timeout_seconds', sa.Float(), nullable=True))
    with op.batch_alter_table('step_executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spec', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('step_executions', schema=None) as batch_op:
        batch_op.drop_column('spec')
    with op.batch_alter_table('task_executions', schema=None) as batch_op:
        batch_op.drop_column('timeout_seconds')
    with op.batch_alter_table('phase_executions', schema=None) as batch_op:
        batch_op.drop_column('required')
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.drop_column('plan_artifacts')
