"""The `signals` extension's own tables (created by its Alembic branch `signals` in migrations/):
the append-only log of operator actions on junctions (mode switches, fixed-plan orders), whose
latest entries also give each junction's mode and order after a restart."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

actions = sa.Table(
    "signals_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("junction", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # mode | force_fixed
    sa.Column("before", sa.String(32), nullable=False),
    sa.Column("after", sa.String(32), nullable=False),
    sa.Index("ix_signals_actions_junction", "junction", "id"),
)
