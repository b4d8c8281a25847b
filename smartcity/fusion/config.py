"""Configuration of incident fusion (pydantic, extra="forbid", every field described and bounded)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from smartcity.core.events import Severity


class FusionConfig(BaseModel):
    """How rule events become incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cooldown_s: float = Field(
        60.0,
        description="Events of the same rule, camera and object within this many seconds of the "
        "incident's last event extend it (counter, last seen) instead of opening a new one.",
        ge=0,
        le=86_400,
    )
    correlation_window_s: float = Field(
        30.0,
        description="Events of the same kind from cameras of the same site within this many seconds "
        "join one incident (0 turns correlation off).",
        ge=0,
        le=86_400,
    )
    severity_by_rule_type: dict[str, Severity] = Field(
        default_factory=dict,
        description="Severity of incidents per rule type (e.g. fire: critical); a rule type not "
        "listed keeps the severity its events carry.",
        max_length=1000,
    )
    kind_groups: tuple[tuple[str, ...], ...] = Field(
        (("fire", "smoke"),),
        description="Kinds that correlate as one (a smoke detector's alarm and a camera's fire); a "
        "group also correlates at one camera that has no site.",
        max_length=100,
    )
    max_event_ids: int = Field(
        100, description="Event ids an incident keeps (the first ones; `count` keeps counting).", ge=1, le=10_000
    )
    max_active: int = Field(
        100_000,
        description="Active incidents fusion keeps in memory; the least recently seen are forgotten "
        "(they stay in the database, a later event opens a new incident).",
        ge=100,
        le=10_000_000,
    )
