"""Cameras keep their privacy settings: static privacy-mask zones (polygons in normalised image
coordinates) and the view mode viewers get (null: the configured default).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("privacy_zones", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("view_mode", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("view_mode")
        batch.drop_column("privacy_zones")
