"""example: the table of rule events the example extension has seen.

Revision ID: example_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "example_0001"
down_revision = None
branch_labels = ("example",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "example_seen",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("example_seen")
