"""artifact records: what the artifact job did with each planned artifact of a run

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('artifact_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('pipeline_run_id', sa.Uuid(), nullable=False),
    sa.Column('project', sa.String(length=128), nullable=False),
    sa.Column('artifact', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('digest', sa.String(length=128), nullable=True),
    sa.Column('tracking_oci_uri', sa.String(length=2048), nullable=True),
    sa.Column('tracking_oci_digest', sa.String(length=128), nullable=True),
    sa.Column('primary_published_uri', sa.String(length=2048), nullable=True),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_run_id'], ['pipeline_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pipeline_run_id', 'project', 'artifact', name='uq_artifact_records_run_artifact')
    )
    with op.batch_alter_table('artifact_records', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_artifact_records_pipeline_run_id'), ['pipeline_run_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('artifact_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_artifact_records_pipeline_run_id'))
    op.drop_table('artifact_records')
