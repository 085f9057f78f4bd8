"""repository names compare without regard to case: the repositories table keeps the spelling
each was first seen in, and existing rows are rewritten to it

Rows of one repository written in several cases before this revision are brought to the first
spelling seen (the earliest run or release). A row whose rewrite would clash with a unique rule
(two runs of one commit, two release numberings of one project, written in two cases) is left as
it was and stays reachable by its id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ("pipeline_runs", "releases", "release_aliases", "release_counters", "deployments")


def upgrade() -> None:
    op.create_table(
        'repositories',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    connection = op.get_bind()
    seen = connection.execute(sa.text(
        "SELECT repository, MIN(created_at) FROM pipeline_runs GROUP BY repository "
        "UNION ALL SELECT repository, MIN(created_at) FROM releases GROUP BY repository"
    )).all()
    first: dict[str, str] = {}
    for name, _at in sorted(seen, key=lambda row: (str(row[1]), row[0])):
        first.setdefault(name.lower(), name)
    if not first:
        return
    now = datetime.now(UTC)
    table = sa.table('repositories', sa.column('key'), sa.column('name'), sa.column('first_seen_at'))
    op.bulk_insert(table, [{"key": key, "name": name, "first_seen_at": now} for key, name in first.items()])
    spellings = {name for name, _at in seen}
    for name in spellings - set(first.values()):  # another spelling of a known repository
        for table_name in TABLES:
            nested = connection.begin_nested()
            try:
                connection.execute(
                    sa.text(f"UPDATE {table_name} SET repository = :to WHERE repository = :was"),
                    {"to": first[name.lower()], "was": name},
                )
            except sa.exc.IntegrityError:
                nested.rollback()
            else:
                nested.commit()


def downgrade() -> None:
    op.drop_table('repositories')
