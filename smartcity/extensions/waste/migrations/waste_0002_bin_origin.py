"""waste: where each registered bin comes from (`config` or `api`: added through GraphQL or an import).

Revision ID: waste_0002
Revises: waste_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "waste_0002"
down_revision = "waste_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("waste_bins") as batch:
        batch.add_column(sa.Column("origin", sa.String(8), nullable=False, server_default="config"))


def downgrade() -> None:
    with op.batch_alter_table("waste_bins") as batch:
        batch.drop_column("origin")
