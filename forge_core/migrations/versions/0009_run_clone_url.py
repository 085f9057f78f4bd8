"""a run keeps the clone URL its trigger named (a push webhook's repository.clone_url)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clone_url', sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.drop_column('clone_url')
