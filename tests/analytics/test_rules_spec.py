"""RuleSpec validation with field paths, schedules, rules files, count roll-ups."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from analytics_helpers import CAM

from smartcity.analytics import (
    RULE_TYPES,
    CountAggregator,
    RuleValidationFailed,
    Schedule,
    load_rules_file,
    rollup,
    rule_errors,
    validate_rule,
)
from smartcity.core.errors import ValidationFailed

ZONE = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]


def test_every_rule_type_is_registered_with_a_params_model() -> None:
    assert set(RULE_TYPES) == {"line_count", "wrong_way", "red_light", "dwell", "dumping", "abandoned_object",
                               "zone_passage", "occupancy", "overflow", "fire", "smoke", "fall", "person_down"}
    for name, cls in RULE_TYPES.items():
        assert cls.type_name == name
        assert cls.Params.model_config.get("extra") == "forbid"
        assert cls.default_classes


def test_default_classes_are_shared_where_the_reason_is_the_same_and_in_the_schema() -> None:
    from smartcity.analytics.classes import VEHICLES
    from smartcity.analytics.registry import params_schema

    defaults = {name: cls.default_classes for name, cls in RULE_TYPES.items()}
    # the vehicle rules watch the same vehicles, bicycles included
    assert {defaults[n] for n in ("dwell", "dumping", "wrong_way", "red_light")} == {VEHICLES}
    assert "bicycle" in VEHICLES
    # traffic measures count every road user, walkers included, per class
    assert defaults["line_count"] == defaults["zone_passage"] == ("person", *VEHICLES)
    assert defaults["occupancy"] == ("person",)
    for name, cls in RULE_TYPES.items():
        schema = params_schema(cls)
        assert schema["x-default-classes"] == list(defaults[name])
        assert schema["description"].endswith(f"is empty): {', '.join(defaults[name])}.")
        assert schema["properties"] == cls.Params.model_json_schema()["properties"]


def test_errors_name_field_paths() -> None:
    errs = rule_errors({"id": "r1", "camera_id": CAM, "type": "dwell",
                        "params": {"zone": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]], "threshold_s": -1},
                        "min_confidence": 2})
    assert "params.zone: polygon self-intersects at edges 0 and 2" in errs
    assert any(e.startswith("params.threshold_s: ") for e in errs)
    assert any(e.startswith("min_confidence: ") for e in errs)
    errs = rule_errors({"id": "r1", "camera_id": CAM, "type": "red_light",
                        "params": {"stop_line": [[0.5, 0.1], [0.5, 0.1]], "direction": [1, 0],
                                   "signal": {"source": "image", "roi": [0.2, 0.2, 0.1, 0.3]}}})
    assert "params.stop_line: line has zero length" in errs
    assert "params.signal.image.roi: box must have x2 > x1 and y2 > y1" in errs
    assert rule_errors({"id": "r1", "camera_id": CAM, "type": "teleport"}) == [
        "type: unknown rule type 'teleport' (known: abandoned_object, dumping, dwell, fall, fire, line_count, "
        "occupancy, overflow, person_down, red_light, smoke, wrong_way, zone_passage)"
    ]
    with pytest.raises(ValidationFailed) as info:
        validate_rule({"id": "r1", "camera_id": CAM, "type": "line_count",
                       "params": {"line": [[0.5, 0], [0.5, 1]], "in_direction": "up"}})
    assert isinstance(info.value, RuleValidationFailed)
    assert any(e.startswith("params.in_direction") for e in info.value.errors)
    assert "params.in_direction" in str(info.value)


def test_classes_default_to_the_rule_type() -> None:
    s = validate_rule({"id": "r1", "camera_id": CAM, "type": "abandoned_object", "params": {}})
    assert s.effective_classes() == ("backpack", "handbag", "suitcase")
    s = validate_rule({"id": "r1", "camera_id": CAM, "type": "abandoned_object", "classes": ["box"],
                       "params": {}})
    assert s.effective_classes() == ("box",)


def test_schedules() -> None:
    assert Schedule().is_active(0)
    one_hour = Schedule(kind="for_duration", duration_s=3600, starts_at=1000)
    assert not one_hour.is_active(999) and one_hour.is_active(1000) and one_hour.is_active(4599)
    assert not one_hour.is_active(4600)
    until = Schedule(kind="until", until=5000)
    assert until.is_active(4999.9) and not until.is_active(5000)
    paris = ZoneInfo("Europe/Paris")
    weekly = Schedule(kind="weekly", tz="Europe/Paris",
                      windows=[{"days": [0, 1, 2, 3, 4], "start": "07:30", "end": "09:00"},
                               {"days": [5], "start": "22:00", "end": "02:00"}])
    monday_8 = datetime(2024, 6, 3, 8, 0, tzinfo=paris).timestamp()
    monday_9 = datetime(2024, 6, 3, 9, 0, tzinfo=paris).timestamp()
    sunday_1 = datetime(2024, 6, 9, 1, 0, tzinfo=paris).timestamp()
    sunday_3 = datetime(2024, 6, 9, 3, 0, tzinfo=paris).timestamp()
    assert weekly.is_active(monday_8) and not weekly.is_active(monday_9)
    assert weekly.is_active(sunday_1) and not weekly.is_active(sunday_3)
    errs = rule_errors({"id": "r", "camera_id": CAM, "type": "occupancy", "params": {"zone": ZONE},
                        "schedule": {"kind": "weekly", "tz": "Mars/Olympus",
                                     "windows": [{"days": [7], "start": "25:00", "end": "09:00"}]}})
    assert "schedule.tz: unknown time zone 'Mars/Olympus'" in errs
    assert "schedule.windows[0].days: day 7 is not in 0 (Monday) .. 6 (Sunday)" in errs
    assert "schedule.windows[0].start: '25:00' is not a time HH:MM (00:00 .. 24:00)" in errs


def test_load_rules_file_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "rules.yaml"
    y.write_text(
        "- id: count\n  camera_id: cam1\n  type: line_count\n"
        "  params: {line: [[0.5, 0], [0.5, 1]], in_direction: left}\n"
        "- id: park\n  camera_id: cam1\n  type: dwell\n  params: {zone: " + str(ZONE) + ", threshold_s: 30}\n"
    )
    rules = load_rules_file(y)
    assert [r.id for r in rules] == ["count", "park"]
    assert rules[1].parsed_params().threshold_s == 30
    j = tmp_path / "rules.json"
    j.write_text('[{"id": "a", "camera_id": "c", "type": "dwell", "params": {"zone": [[0,0],[1,1]]}}]')
    with pytest.raises(RuleValidationFailed) as info:
        load_rules_file(j)
    assert info.value.errors == ["[0].params.zone: a polygon needs at least 3 points, got 2"]


def test_count_buckets_and_rollup() -> None:
    agg = CountAggregator(CAM)
    for t in (0.0, 59.9, 60.0, 899.0, 900.0, 3599.0, 3600.0):
        agg.add("r", "car", "in", t)
    agg.add("r", "person", "out", 30.0)
    first = agg.buckets()
    assert [(b.bucket_start, b.object_class, b.n) for b in first] == [
        (0.0, "car", 2), (0.0, "person", 1), (60.0, "car", 1), (840.0, "car", 1), (900.0, "car", 1),
        (3540.0, "car", 1), (3600.0, "car", 1)]
    assert agg.buckets() == []  # nothing changed since
    agg.add("r", "car", "in", 10.0)
    again = agg.buckets(flush_before=120.0)
    assert [(b.bucket_start, b.n) for b in again] == [(0.0, 3)]
    assert again[0].part == first[0].part  # same part of the bucket: the storage upserts its row
    assert again[0].event_id != first[0].event_id  # another emission (a larger total)
    q = rollup(first, 900)
    assert [(b.bucket_start, b.object_class, b.n, b.bucket_s) for b in q] == [
        (0.0, "car", 4, 900), (0.0, "person", 1, 900), (900.0, "car", 1, 900), (2700.0, "car", 1, 900),
        (3600.0, "car", 1, 900)]
    assert sum(b.n for b in rollup(q, 86400)) == 8
    with pytest.raises(ValueError, match="cannot roll"):
        rollup(q, 600)
