"""Emergency dispatch state survives a restart: per incident, the CAP Alert that went out, the
targets that got it, the latest follow-up and the deferred confirm_first deliveries.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cap_dispatches",
        sa.Column("incident_id", sa.String(128), nullable=False),
        sa.Column("alert", JSON, nullable=True),
        sa.Column("event_ids", JSON, nullable=False),
        sa.Column("targets", JSON, nullable=False),
        sa.Column("latest", JSON, nullable=True),
        sa.Column("followed", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("waiting", JSON, nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_cap_dispatches"),
    )
    op.create_index("ix_cap_dispatches_updated_at", "cap_dispatches", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_cap_dispatches_updated_at", table_name="cap_dispatches")
    op.drop_table("cap_dispatches")
