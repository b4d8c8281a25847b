"""SQLAlchemy table definitions of the first-cut data model (the same code on SQLite and PostgreSQL).

Times are plain unix seconds stored as double precision floats (`t`, `created_at`, `at`...),
the same representation the events carry: no time zone conversions, exact ordering, cheap
range queries on both dialects. JSON columns are JSONB on PostgreSQL and JSON text on SQLite.

Migrations (smartcity/storage/migrations) create these tables explicitly; a test compares
the migrated schema with this metadata so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Autoincrement keys: BIGINT identity on PostgreSQL, INTEGER (the rowid alias) on SQLite.
AutoId = BigInteger().with_variant(Integer(), "sqlite")
# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# Unix seconds.
Time: Double[float] = Double()

ID_LEN = 128

camera_groups = Table(
    "camera_groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
)

cameras = Table(
    "cameras",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("url", Text, nullable=False),
    Column(
        "group_name",
        String(64),
        ForeignKey("camera_groups.name", onupdate="CASCADE", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("analysis_fps", Double, nullable=False, server_default="5"),
    Column("site", String(200), nullable=False, server_default=""),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    # privacy-mask zones: [[[x, y], ...], ...] in normalised image coordinates; set by admins only
    Column("privacy_zones", Json, nullable=False, server_default="[]"),
    Column("view_mode", String(16), nullable=True),  # pixelated | background; null: the configured default
    Index(None, "group_name"),
)

rules = Table(
    "rules",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("geometry", Json, nullable=False),
    Column("classes", Json, nullable=False),
    Column("params", Json, nullable=False),
    Column("schedule", Json, nullable=True),
    Column("active_from", Time, nullable=True),
    Column("active_until", Time, nullable=True),
    Column("cooldown_s", Double, nullable=False, server_default="0"),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("min_confidence", Double, nullable=False, server_default="0.3"),
    Index(None, "camera_id"),
)

# Append-only register of what the cameras saw. No foreign keys: an event outlives the
# camera or rule that produced it, and the writer must never fail on a deleted camera.
# Producer-chosen strings in events, incidents and counts have no length limit for the same
# reason: one over-long id must not turn a batch into one that can never commit.
events = Table(
    "events",
    metadata,
    Column("event_id", String(), primary_key=True),
    Column("type", String(), nullable=False),
    Column("camera_id", String(), nullable=False),
    Column("t", Time, nullable=False),
    Column("rule_id", String(), nullable=True),
    Column("rule_type", String(), nullable=True),
    Column("kind", String(), nullable=True),
    Column("object_class", String(), nullable=True),
    Column("track_id", BigInteger, nullable=True),
    Column("severity", String(), nullable=True),
    Column("payload", Json, nullable=True),
    Column("evidence_path", Text, nullable=True),
    Column("created_at", Time, nullable=False),
    Index(None, "camera_id", "t"),
    Index(None, "type", "t"),
    Index(None, "rule_id", "t"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(), primary_key=True),
    Column("rule_id", String(), nullable=True),
    Column("kind", String(), nullable=False),
    Column("severity", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("camera_ids", Json, nullable=False),
    Column("first_seen", Time, nullable=False),
    Column("last_seen", Time, nullable=False),
    Column("count", Integer, nullable=False),
    Column("event_ids", Json, nullable=False),
    Column("acknowledged_by", String(), nullable=True),
    Column("acknowledged_at", Time, nullable=True),
    Column("resolved_by", String(), nullable=True),
    Column("resolved_at", Time, nullable=True),
    Column("comment", Text, nullable=True),
    # `t` of the Incident event that last updated the row: an older redelivery never
    # overwrites a newer state.
    Column("updated_t", Time, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index(None, "state", "last_seen"),
)

# Anonymous counts, kept beyond event retention. One row per *part* of a bucket (crossings
# confirmed after a bucket was handed out open a new part: smartcity.analytics.counts); a
# bucket's count is the sum of its rows. `n` is the part's running total, which only grows, so
# an upsert keeps the larger and a stale redelivery never lowers it; `updated_t` is the `t` of
# the CountBucket that set it. `part` '' is a bucket stored whole (rows from before parts).
counts = Table(
    "counts",
    metadata,
    Column("camera_id", String(), nullable=False),
    Column("rule_id", String(), nullable=False),
    Column("object_class", String(), nullable=False),
    Column("direction", String(), nullable=False),
    Column("bucket_start", Time, nullable=False),
    Column("bucket_s", Integer, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("updated_t", Time, nullable=False),
    Column("part", String(), nullable=False, server_default=""),
    PrimaryKeyConstraint("camera_id", "rule_id", "object_class", "direction", "bucket_start", "bucket_s", "part"),
    Index(None, "rule_id", "bucket_start"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    # No foreign key: alerts may be queued before the writer has committed the incident.
    Column("incident_id", String(ID_LEN), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index(None, "incident_id"),
    Index(None, "state", "updated_at"),
)

# What emergency dispatch sent per incident (core.dispatch_state): the CAP Alert that Updates and
# Cancels reference, who got it, the deferred confirm_first deliveries; survives a restart.
cap_dispatches = Table(
    "cap_dispatches",
    metadata,
    Column("incident_id", String(ID_LEN), primary_key=True),
    Column("alert", Json, nullable=True),
    Column("event_ids", Json, nullable=False),
    Column("targets", Json, nullable=False),
    Column("latest", Json, nullable=True),
    Column("followed", Json, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("waiting", Json, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index(None, "updated_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    # tokens issued at or before this time are void (a role, scope or password change)
    Column("tokens_valid_after", Time, nullable=True),
)

# Camera-group scopes of a user (an operator sees only the cameras of its groups).
user_groups = Table(
    "user_groups",
    metadata,
    Column("user_id", AutoId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "group_name",
        String(64),
        ForeignKey("camera_groups.name", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    ),
    PrimaryKeyConstraint("user_id", "group_name"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("at", Time, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("before", Json, nullable=True),
    Column("after", Json, nullable=True),
    Index(None, "at"),
    Index(None, "target", "at"),
)
