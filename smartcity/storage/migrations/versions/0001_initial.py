"""Initial schema: cameras, groups, rules, events, incidents, counts, alert deliveries, users, audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out explicitly (not `metadata.create_all`) so that this revision keeps creating the
same schema whatever later versions of tables.py look like. Times are unix seconds (double).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "camera_groups",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("name", name="pk_camera_groups"),
    )
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("analysis_fps", sa.Double(), nullable=False, server_default="5"),
        sa.Column("site", sa.String(200), nullable=False, server_default=""),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["camera_groups.name"],
            name="fk_cameras_group_name_camera_groups",
            onupdate="CASCADE",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_cameras_group_name", "cameras", ["group_name"])

    op.create_table(
        "rules",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("geometry", JSON, nullable=False),
        sa.Column("classes", JSON, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("schedule", JSON, nullable=True),
        _time("active_from", nullable=True),
        _time("active_until", nullable=True),
        sa.Column("cooldown_s", sa.Double(), nullable=False, server_default="0"),
        _time("created_at"),
        _time("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name="fk_rules_camera_id_cameras", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_rules_camera_id", "rules", ["camera_id"])

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        _time("t"),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("rule_type", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=True),
        sa.Column("object_class", sa.String(), nullable=True),
        sa.Column("track_id", sa.BigInteger(), nullable=True),
        sa.Column("severity", sa.String(), nullable=True),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("evidence_path", sa.Text(), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("event_id", name="pk_events"),
    )
    op.create_index("ix_events_camera_id_t", "events", ["camera_id", "t"])
    op.create_index("ix_events_type_t", "events", ["type", "t"])
    op.create_index("ix_events_rule_id_t", "events", ["rule_id", "t"])

    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("camera_ids", JSON, nullable=False),
        _time("first_seen"),
        _time("last_seen"),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("event_ids", JSON, nullable=False),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        _time("acknowledged_at", nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        _time("resolved_at", nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _time("updated_t"),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("incident_id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_state_last_seen", "incidents", ["state", "last_seen"])

    op.create_table(
        "counts",
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("object_class", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        _time("bucket_start"),
        sa.Column("bucket_s", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        _time("updated_t"),
        sa.PrimaryKeyConstraint(
            "camera_id", "rule_id", "object_class", "direction", "bucket_start", "bucket_s", name="pk_counts"
        ),
    )
    op.create_index("ix_counts_rule_id_bucket_start", "counts", ["rule_id", "bucket_start"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("incident_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_alert_deliveries_idempotency_key"),
    )
    op.create_index("ix_alert_deliveries_incident_id", "alert_deliveries", ["incident_id"])
    op.create_index("ix_alert_deliveries_state_updated_at", "alert_deliveries", ["state", "updated_at"])

    op.create_table(
        "users",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        _time("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "user_groups",
        sa.Column("user_id", AUTO_ID, nullable=False, autoincrement=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "group_name", name="pk_user_groups"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_groups_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["camera_groups.name"],
            name="fk_user_groups_group_name_camera_groups",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        _time("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target_at", "audit_log", ["target", "at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "user_groups",
        "users",
        "alert_deliveries",
        "counts",
        "incidents",
        "events",
        "rules",
        "cameras",
        "camera_groups",
    ):
        op.drop_table(table)
