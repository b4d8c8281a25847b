"""waste: bins, sensor readings (unique message id), crew collections and plans.

Revision ID: waste_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "waste_0001"
down_revision = None
branch_labels = ("waste",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waste_bins",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "waste_readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(128), nullable=False, unique=True),
        sa.Column("bin_id", sa.String(64), nullable=False),
        sa.Column("level", sa.Float, nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_waste_readings_bin_t", "waste_readings", ["bin_id", "t"])
    op.create_table(
        "waste_collections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bin_id", sa.String(64), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
    )
    op.create_index("ix_waste_collections_bin_t", "waste_collections", ["bin_id", "t"])
    op.create_table(
        "waste_plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_waste_plans_day", "waste_plans", ["day"])


def downgrade() -> None:
    op.drop_table("waste_plans")
    op.drop_table("waste_collections")
    op.drop_table("waste_readings")
    op.drop_table("waste_bins")
