"""Counts keep one row per part of a bucket (crossings confirmed after a bucket was handed out
open a new part instead of overwriting its total); a bucket's count is the sum of its rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ["camera_id", "rule_id", "object_class", "direction", "bucket_start", "bucket_s"]


def upgrade() -> None:
    # batch mode: SQLite cannot change a primary key in place, so the table is copied
    with op.batch_alter_table("counts", recreate="always") as batch:
        batch.add_column(sa.Column("part", sa.String(), nullable=False, server_default=""))
        batch.drop_constraint("pk_counts", type_="primary")
        batch.create_primary_key("pk_counts", [*_KEY, "part"])


def downgrade() -> None:
    # the parts of each bucket fold back into one row (their sum), as readers saw them
    op.execute(
        "UPDATE counts SET n = (SELECT sum(c2.n) FROM counts c2 WHERE "
        + " AND ".join(f"c2.{c} = counts.{c}" for c in _KEY)
        + "), part = '' WHERE part = (SELECT min(c3.part) FROM counts c3 WHERE "
        + " AND ".join(f"c3.{c} = counts.{c}" for c in _KEY)
        + ")"
    )
    op.execute("DELETE FROM counts WHERE part <> ''")
    with op.batch_alter_table("counts", recreate="always") as batch:
        batch.drop_constraint("pk_counts", type_="primary")
        batch.create_primary_key("pk_counts", _KEY)
        batch.drop_column("part")
