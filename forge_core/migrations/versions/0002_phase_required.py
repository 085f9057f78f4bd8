"""a phase's required flag

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # phases recorded before the flag stopped their run on a failure: they were required
    with op.batch_alter_table('phase_executions') as batch:
        batch.add_column(sa.Column('required', sa.Boolean(), server_default=sa.text('true'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('phase_executions') as batch:
        batch.drop_column('required')
