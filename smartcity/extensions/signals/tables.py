"""The `signals` extension's own tables (created by its Alembic branch `signals` in migrations/):
the append-only log of operator actions on junctions (mode switches, fixed-plan orders, new
configurations), whose latest entries also give each junction's mode and order after a restart,
and the junction configurations set through the API (they replace the config file's)."""

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
    sa.Column("action", sa.String(32), nullable=False),  # mode | force_fixed | config
    sa.Column("before", sa.String(32), nullable=False),
    sa.Column("after", sa.String(32), nullable=False),
    sa.Index("ix_signals_actions_junction", "junction", "id"),
)

junctions = sa.Table(
    "signals_junctions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),  # SignalJunction JSON
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)
