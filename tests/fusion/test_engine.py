"""Fusion engine: dedupe, correlation, severity, lifecycle, new incident after resolution."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.core.events import IncidentState, RuleEvent, Severity
from smartcity.fusion.config import FusionConfig
from smartcity.fusion.engine import (
    FusionEngine,
    InvalidTransition,
    check_transition,
    dedupe_key,
    incident_id_for,
)

T0 = 1_700_000_000.0


def ev(t: float, *, camera: str = "cam-1", rule: str = "zone-1", track: int | None = 1, kind: str = "intrusion",
       rule_type: str = "zone", severity: Severity = Severity.LOW, cls: str = "person") -> RuleEvent:
    return RuleEvent(camera_id=camera, t=T0 + t, rule_id=rule, rule_type=rule_type, kind=kind,
                     object_class=cls, track_id=track, severity=severity)


def engine(**cfg: object) -> FusionEngine:
    return FusionEngine(FusionConfig.model_validate({"cooldown_s": 60, "correlation_window_s": 30, **cfg}),
                        sites={"cam-1": "station", "cam-2": "station", "cam-3": "harbour"})


def test_same_rule_camera_and_object_within_cooldown_make_one_incident_with_a_counter() -> None:
    f = engine()
    first = f.ingest(ev(0), now=T0)
    second = f.ingest(ev(40), now=T0 + 40)
    third = f.ingest(ev(90), now=T0 + 90)  # 50 s after the last one: still within the cooldown
    assert first.opened and not second.opened and not third.opened
    inc = third.incident
    assert inc.incident_id == first.incident.incident_id == incident_id_for(first.incident.event_ids[0])
    assert (inc.count, inc.first_seen, inc.last_seen) == (3, T0, T0 + 90)
    assert inc.t == T0 + 90
    assert len(inc.event_ids) == 3 and f.deduplicated == 2


def test_after_the_cooldown_the_same_thing_opens_a_new_incident() -> None:
    f = engine(correlation_window_s=0)
    a = f.ingest(ev(0), now=T0).incident
    b = f.ingest(ev(61), now=T0 + 61)
    assert b.opened and b.incident.incident_id != a.incident_id


def test_another_object_or_rule_is_another_incident_without_a_site() -> None:
    f = engine(correlation_window_s=0)
    a = f.ingest(ev(0, track=1), now=T0)
    b = f.ingest(ev(1, track=2), now=T0 + 1)
    c = f.ingest(ev(2, rule="zone-2"), now=T0 + 2)
    assert a.opened and b.opened and c.opened
    assert len({a.incident.incident_id, b.incident.incident_id, c.incident.incident_id}) == 3


def test_same_kind_on_cameras_of_one_site_within_the_window_is_one_incident() -> None:
    f = engine()
    a = f.ingest(ev(0, camera="cam-1", track=1), now=T0)
    b = f.ingest(ev(10, camera="cam-2", track=5, rule="zone-9"), now=T0 + 10)
    c = f.ingest(ev(12, camera="cam-3", track=5), now=T0 + 12)  # other site
    d = f.ingest(ev(15, camera="cam-2", track=6, kind="fall"), now=T0 + 15)  # other kind
    assert a.opened and not b.opened and c.opened and d.opened
    assert b.incident.incident_id == a.incident.incident_id
    assert b.incident.camera_ids == ("cam-1", "cam-2") and b.incident.count == 2
    assert b.site == "station" and f.correlated == 1
    # outside the window: a new incident even on the same site
    e = f.ingest(ev(50, camera="cam-2", track=7), now=T0 + 50)
    assert e.opened


def test_severity_per_rule_type_overrides_the_event_severity() -> None:
    f = engine(severity_by_rule_type={"fire": "critical"})
    assert f.ingest(ev(0, rule_type="fire", kind="fire"), now=T0).incident.severity == Severity.CRITICAL
    assert f.ingest(ev(0, rule="r2", severity=Severity.MEDIUM), now=T0).incident.severity == Severity.MEDIUM


def test_a_redelivered_event_changes_nothing() -> None:
    f = engine()
    e1 = ev(0)
    a = f.ingest(e1, now=T0)
    e2 = ev(5)
    f.ingest(e2, now=T0 + 5)
    again_first = f.ingest(e1, now=T0 + 6)
    again_second = f.ingest(e2, now=T0 + 7)
    assert not again_first.opened and not again_second.opened
    assert again_second.incident.count == 2
    assert again_first.incident.incident_id == a.incident.incident_id


def test_lifecycle_moves_and_a_new_incident_after_resolution() -> None:
    f = engine()
    a = f.ingest(ev(0), now=T0).incident
    acked = f.apply_state(a.incident_id, IncidentState.ACKNOWLEDGED, now=T0 + 5)
    assert acked is not None and acked.state is IncidentState.ACKNOWLEDGED and acked.t == T0 + 5
    # acknowledged incidents still absorb repeats
    assert not f.ingest(ev(10), now=T0 + 10).opened
    resolved = f.apply_state(a.incident_id, IncidentState.RESOLVED, now=T0 + 20)
    assert resolved is not None and resolved.state is IncidentState.RESOLVED
    assert f.get(a.incident_id) is None
    again = f.ingest(ev(25), now=T0 + 25)
    assert again.opened and again.incident.incident_id != a.incident_id


@pytest.mark.parametrize(
    ("frm", "to", "ok"),
    [
        (IncidentState.OPEN, IncidentState.ACKNOWLEDGED, True),
        (IncidentState.OPEN, IncidentState.DISMISSED, True),
        (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED, True),
        (IncidentState.ACKNOWLEDGED, IncidentState.OPEN, False),
        (IncidentState.RESOLVED, IncidentState.ACKNOWLEDGED, False),
        (IncidentState.DISMISSED, IncidentState.RESOLVED, False),
        (IncidentState.OPEN, IncidentState.OPEN, False),
    ],
)
def test_transitions(frm: IncidentState, to: IncidentState, ok: bool) -> None:
    if ok:
        check_transition(frm, to)
    else:
        with pytest.raises(InvalidTransition, match=f"from {frm.value} to {to.value}"):
            check_transition(frm, to)


def test_memory_is_bounded_and_old_incidents_are_forgotten() -> None:
    f = engine(max_active=100, correlation_window_s=0)
    for i in range(250):
        f.ingest(ev(i * 0.001, track=i), now=T0)
    assert len(f.active) == 100
    f.ingest(ev(1000, track=10_000), now=T0 + 1000)  # far later: everything earlier expired
    assert len(f.active) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.floats(0, 5)), min_size=1, max_size=60))
def test_every_event_is_counted_in_exactly_one_incident(spec: list[tuple[int, int, float]]) -> None:
    f = engine()
    t = 0.0
    latest: dict[str, int] = {}
    for cam, track, dt in spec:
        t += dt
        res = f.ingest(ev(t, camera=f"cam-{cam}", track=track), now=T0 + t)
        latest[res.incident.incident_id] = res.incident.count
    assert sum(latest.values()) == len(spec)


def test_a_restored_incident_dedupes_and_correlates_like_before_the_restart() -> None:
    before = engine()
    opened = before.ingest(ev(0, camera="cam-1", track=4), now=T0).incident
    after = engine()  # a new process
    after.restore(opened, [dedupe_key(ev(0, camera="cam-1", track=4))])
    same = after.ingest(ev(20, camera="cam-1", track=4), now=T0 + 20)
    assert not same.opened and same.incident.incident_id == opened.incident_id and same.incident.count == 2
    near = after.ingest(ev(25, camera="cam-2", track=8, rule="zone-7"), now=T0 + 25)  # same site, in window
    assert not near.opened and near.incident.incident_id == opened.incident_id
    other = after.ingest(ev(26, camera="cam-1", track=5, kind="fall"), now=T0 + 26)
    assert other.opened
    # a closed incident is not taken back: the same thing makes a new one
    fresh = engine()
    fresh.restore(replace(opened, state=IncidentState.RESOLVED), [dedupe_key(ev(0, track=4))])
    assert fresh.ingest(ev(30, track=4), now=T0 + 30).opened
    assert after.memory_s == 120
