"""an approval keeps the roles and groups its approver held, for approval policies (repo.cue)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('release_approvals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approver_roles', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('approver_groups', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('release_approvals', schema=None) as batch_op:
        batch_op.drop_column('approver_groups')
        batch_op.drop_column('approver_roles')
