"""Alert policies (pure): which channels and recipients an incident alerts, when, and how often.

A policy matches incidents by rule id, rule type, kind and minimum severity. It notifies its
`notify` recipients at once and, while nobody acknowledges the incident, the `escalation`
recipients one after the other, every `escalate_after_min` minutes. Quiet hours hold back
the channels that wake people (SMS, console sound) unless the incident is severe enough.
Channel names are plain strings here: the alert channels are plug-ins of `integrations`, and
the alerts configuration checks each name against their registry.
`plan_deliveries` turns an opened incident into planned deliveries; the dispatcher applies the
per-recipient `RateLimiter` when it sends.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartcity.core.events import Incident, Severity

# The syntax of a channel name (a registered channel's config `type`); which names exist is
# the alert channel registry's business, checked where the alerts config is validated.
CHANNEL_NAME = r"^[a-z][a-z0-9_]{0,31}$"
SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)


def severity_at_least(s: Severity | str, floor: Severity | str) -> bool:
    return SEVERITY_ORDER.index(Severity(s)) >= SEVERITY_ORDER.index(Severity(floor))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Section):
    channel: str = Field(
        description="A configured alert channel: sms, webhook, mqtt, console (operator console sound) or a plug-in's.",
        pattern=CHANNEL_NAME,
    )
    target: str = Field(
        description="sms: E.164 phone number; webhook: name of a configured endpoint; "
        "mqtt: topic under the alerts branch; console: a console name (usually 'operators').",
        min_length=1,
        max_length=200,
    )

    @field_validator("target")
    @classmethod
    def _no_control(cls, v: str) -> str:
        if any(ord(c) < 32 for c in v):
            raise ValueError("control characters are not allowed")
        return v


class QuietHours(_Section):
    start: dtime = Field(description="Local time quiet hours begin (HH:MM).")
    end: dtime = Field(description="Local time quiet hours end (HH:MM); before start means overnight.")
    timezone: str = Field("UTC", description="IANA time zone of start and end.", min_length=1, max_length=64)
    channels: tuple[str, ...] | None = Field(
        None,
        description="Channels held back during quiet hours (default: every channel that wakes people, "
        "e.g. sms and console).",
        max_length=32,
    )
    unless_severity: Severity = Field(
        Severity.CRITICAL, description="Incidents at or above this severity alert even in quiet hours."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("channels")
    @classmethod
    def _names(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for c in v or ():
            if not re.match(CHANNEL_NAME, c):
                raise ValueError(f"{c!r} is not a channel name")
        return v

    def holds_back(self, channel: str) -> bool:
        """Whether this channel waits out the quiet hours (an unresolved default holds none:
        the alerts config fills it in from the channels' traits)."""
        return self.channels is not None and channel in self.channels

    def covers(self, t: float) -> bool:
        """Whether unix time `t` falls in the quiet hours."""
        local = datetime.fromtimestamp(t, UTC).astimezone(ZoneInfo(self.timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class AlertPolicy(_Section):
    name: str = Field(description="Policy name (unique).", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    rule_ids: tuple[str, ...] = Field((), description="Only incidents of these rules (empty: any).", max_length=1000)
    rule_types: tuple[str, ...] = Field(
        (), description="Only incidents whose rule type is listed (empty: any).", max_length=100
    )
    kinds: tuple[str, ...] = Field((), description="Only incidents of these kinds (empty: any).", max_length=100)
    min_severity: Severity = Field(Severity.INFO, description="Only incidents at or above this severity.")
    notify: tuple[Recipient, ...] = Field((), description="Recipients alerted at once.", max_length=100)
    escalation: tuple[Recipient, ...] = Field(
        (),
        description="Recipients alerted one after the other while the incident stays unacknowledged.",
        max_length=20,
    )
    escalate_after_min: float = Field(
        5.0, description="Minutes without acknowledgement before the next escalation recipient.", gt=0, le=1440
    )
    quiet_hours: QuietHours | None = Field(None, description="Hours when waking channels are held back.")

    def matches(self, incident: Incident, rule_type: str) -> bool:
        if self.rule_ids and incident.rule_id not in self.rule_ids:
            return False
        if self.rule_types and rule_type not in self.rule_types:
            return False
        if self.kinds and incident.kind not in self.kinds:
            return False
        return severity_at_least(incident.severity, self.min_severity)


class RateLimit(_Section):
    max_messages: int = Field(10, description="Messages one recipient may get per window.", ge=1, le=100_000)
    window_s: float = Field(3600.0, description="Sliding window of the rate limit, seconds.", gt=0, le=86_400 * 7)


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """One alert to send: `step` 0 at once, step k >= 1 an escalation due at `due_at`."""

    incident_id: str
    policy: str
    step: int
    channel: str
    target: str
    due_at: float
    suppressed: str | None = None  # why it will not be sent (quiet hours), recorded anyway

    @property
    def idempotency_key(self) -> str:
        """Stable per incident, policy, step, channel and target (at most ~120 characters)."""
        digest = hashlib.blake2b(
            f"{self.policy}\x00{self.channel}\x00{self.target}".encode(), digest_size=12
        ).hexdigest()
        return f"{self.incident_id}:{self.step}:{self.channel}:{digest}"


def plan_deliveries(
    incident: Incident, rule_type: str, policies: Sequence[AlertPolicy], now: float
) -> list[PlannedDelivery]:
    """Deliveries for a newly opened incident: each matching policy's notify list now, its
    escalation chain later. A recipient named by several policies gets one delivery per step."""
    out: list[PlannedDelivery] = []
    seen: set[tuple[int, str, str]] = set()
    for p in policies:
        if not p.matches(incident, rule_type):
            continue
        steps: list[tuple[int, Recipient]] = [(0, r) for r in p.notify]
        steps += [(i + 1, r) for i, r in enumerate(p.escalation)]
        for step, r in steps:
            if (step, r.channel, r.target) in seen:
                continue
            seen.add((step, r.channel, r.target))
            due = now + step * p.escalate_after_min * 60.0
            quiet = p.quiet_hours
            suppressed = None
            if (
                quiet is not None
                and quiet.holds_back(r.channel)
                and not severity_at_least(incident.severity, quiet.unless_severity)
                and quiet.covers(due)
            ):
                suppressed = f"quiet hours of policy {p.name}"
            out.append(PlannedDelivery(incident.incident_id, p.name, step, r.channel, r.target, due, suppressed))
    return out


class RateLimiter:
    """Sliding-window limit per (channel, target); `allow` records the send when it allows it."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self.refused = 0

    def allow(self, channel: str, target: str, now: float) -> bool:
        q = self._sent.setdefault((channel, target), deque())
        while q and q[0] <= now - self.limit.window_s:
            q.popleft()
        if len(q) >= self.limit.max_messages:
            self.refused += 1
            return False
        q.append(now)
        return True
