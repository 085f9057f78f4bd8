"""an approval keeps the roles and groups its approver held, for approval policies (repo.cue)

Revision ID: 0003_approver_roles
Revises: 0003 (the deployment reason; both once branched from 0002)
Create Date: 2026-12-01 15:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_approver_roles'
down_revision = '0003'
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
