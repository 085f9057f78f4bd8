"""a run counts its changes and each row keeps the count of its last change (the progress cursor)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 18:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ('pipeline_runs', 'phase_executions', 'task_executions', 'step_executions', 'artifact_records')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('progress_seq', sa.BigInteger(), server_default=sa.text('0'),
                                          nullable=False))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('progress_seq')
