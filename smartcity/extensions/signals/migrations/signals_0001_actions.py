"""signals: the operator actions log and the junction configurations set through the API.

Revision ID: signals_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "signals_0001"
down_revision = None
branch_labels = ("signals",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signals_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("junction", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("before", sa.String(32), nullable=False),
        sa.Column("after", sa.String(32), nullable=False),
    )
    op.create_index("ix_signals_actions_junction", "signals_actions", ["junction", "id"])
    op.create_table(
        "signals_junctions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signals_junctions")
    op.drop_index("ix_signals_actions_junction", table_name="signals_actions")
    op.drop_table("signals_actions")
