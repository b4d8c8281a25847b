"""The `waste` extension's own tables (created by its Alembic branch `waste` in migrations/)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# the registry (the body is the Bin's JSON): bins of the configuration (origin `config`, rewritten
# at every start) and bins added through the API or an import (origin `api`, kept across restarts)
bins = sa.Table(
    "waste_bins",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False, server_default="config"),
)

readings = sa.Table(
    "waste_readings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(128), nullable=False, unique=True),  # idempotent delivery
    sa.Column("bin_id", sa.String(64), nullable=False),
    sa.Column("level", sa.Float, nullable=False),
    sa.Column("t", sa.Float, nullable=False),  # unix seconds of the measurement
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Index("ix_waste_readings_bin_t", "bin_id", "t"),
)

collections = sa.Table(
    "waste_collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("bin_id", sa.String(64), nullable=False),
    sa.Column("t", sa.Float, nullable=False),
    sa.Column("reported_by", sa.String(64), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),  # http | graphql
    sa.Index("ix_waste_collections_bin_t", "bin_id", "t"),
)

plans = sa.Table(
    "waste_plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # schedule | demand
    sa.Column("day", sa.String(10), nullable=False, index=True),  # local ISO date the plan is for
    sa.Column("body", sa.Text, nullable=False),  # plans.plan_to_json
)
