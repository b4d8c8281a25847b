"""Alert policies: matching, escalation steps, quiet hours, rate limits, config errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from smartcity.core.events import Incident, Severity
from smartcity.fusion.policy import AlertPolicy, RateLimit, RateLimiter, plan_deliveries

NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2024, 6, 1, 23, 30, tzinfo=UTC).timestamp()


def incident(severity: Severity = Severity.HIGH, kind: str = "intrusion") -> Incident:
    return Incident(camera_id="c", t=NOON, incident_id="i1", rule_id="zone-1", kind=kind, severity=severity)


def policy(**kw: object) -> AlertPolicy:
    base: dict[str, object] = {
        "name": "p",
        "notify": [{"channel": "sms", "target": "+1"}, {"channel": "webhook", "target": "ops"}],
        "escalation": [{"channel": "sms", "target": "+2"}, {"channel": "sms", "target": "+3"}],
        "escalate_after_min": 5,
    }
    base.update(kw)
    return AlertPolicy.model_validate(base)


def test_notify_now_and_escalate_one_recipient_per_period() -> None:
    plan = plan_deliveries(incident(), "zone", [policy()], NOON)
    assert [(p.step, p.channel, p.target, p.due_at - NOON) for p in plan] == [
        (0, "sms", "+1", 0.0), (0, "webhook", "ops", 0.0), (1, "sms", "+2", 300.0), (2, "sms", "+3", 600.0)
    ]
    assert len({p.idempotency_key for p in plan}) == 4
    assert all(p.suppressed is None for p in plan)
    # planning the same incident again gives the same keys (idempotent outbox inserts)
    assert [p.idempotency_key for p in plan] == [p.idempotency_key for p in plan_deliveries(incident(), "zone", [policy()], NOON)]


def test_matching_by_severity_rule_type_kind_and_rule() -> None:
    assert plan_deliveries(incident(Severity.LOW), "zone", [policy(min_severity="medium")], NOON) == []
    assert plan_deliveries(incident(), "line", [policy(rule_types=["zone"])], NOON) == []
    assert plan_deliveries(incident(kind="fall"), "zone", [policy(kinds=["fire"])], NOON) == []
    assert plan_deliveries(incident(), "zone", [policy(rule_ids=["zone-2"])], NOON) == []
    assert len(plan_deliveries(incident(), "zone", [policy(rule_ids=["zone-1"], kinds=["intrusion"])], NOON)) == 4


def test_quiet_hours_hold_back_waking_channels_unless_severe() -> None:
    # the channel list the alerts config fills in from the channels' traits (tests/integrations)
    quiet = {"start": "22:00", "end": "07:00", "timezone": "UTC", "unless_severity": "critical", "channels": ["sms", "console"]}
    p = policy(quiet_hours=quiet)
    night = {(d.channel, d.target): d.suppressed for d in plan_deliveries(incident(), "zone", [p], MIDNIGHT)}
    assert night[("sms", "+1")] == "quiet hours of policy p"
    assert night[("webhook", "ops")] is None  # machines are not woken up
    day = plan_deliveries(incident(), "zone", [p], NOON)
    assert all(d.suppressed is None for d in day)
    critical = plan_deliveries(incident(Severity.CRITICAL), "zone", [p], MIDNIGHT)
    assert all(d.suppressed is None for d in critical)


def test_quiet_hours_in_a_local_time_zone() -> None:
    p = policy(quiet_hours={"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo", "channels": ["sms"]})
    # 12:00 UTC is 21:00 in Tokyo (not quiet); 13:30 UTC is 22:30 (quiet)
    assert plan_deliveries(incident(), "zone", [p], NOON)[0].suppressed is None
    assert plan_deliveries(incident(), "zone", [p], NOON + 5400)[0].suppressed is not None


def test_rate_limit_per_recipient_in_a_sliding_window() -> None:
    lim = RateLimiter(RateLimit(max_messages=2, window_s=60))
    assert [lim.allow("sms", "+1", t) for t in (0, 1, 2)] == [True, True, False]
    assert lim.allow("sms", "+2", 2)  # another recipient has its own budget
    assert lim.allow("sms", "+1", 60.5)  # the first send left the window
    assert lim.refused == 1


def test_config_rejects_unknown_keys_bad_zones_and_channels() -> None:
    with pytest.raises(ValidationError, match="extra"):
        policy(colour="red")
    with pytest.raises(ValidationError, match="unknown time zone"):
        policy(quiet_hours={"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"})
    # which channel names exist is the channel registry's business (tests/integrations/test_channels.py);
    # a policy alone refuses what cannot be a channel name
    with pytest.raises(ValidationError, match="channel"):
        policy(notify=[{"channel": "Pager!", "target": "x"}])
    with pytest.raises(ValidationError, match="not a channel name"):
        policy(quiet_hours={"start": "22:00", "end": "07:00", "channels": ["SMS "]})
    with pytest.raises(ValidationError, match="escalate_after_min"):
        policy(escalate_after_min=0)
