"""The `waste` config entry (unknown fields, bounds, cross-checks, bins from a file) and the stored plan body's round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from waste_harness import city

from smartcity.extensions.waste import BinImportError, WasteConfig
from smartcity.extensions.waste.planner import Depot, Plan, Route, Stop, Unvisited
from smartcity.extensions.waste.plans import plan_from_json, plan_to_json


def errors(entry: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        WasteConfig.model_validate(entry)
    # an error of the whole entry (a cross-check) has no location
    return [": ".join(filter(None, (".".join(str(p) for p in e["loc"]), e["msg"]))) for e in info.value.errors()]


def test_config_refuses_what_it_cannot_run() -> None:
    assert WasteConfig.model_validate(city(2)).planner.time_limit_s == 1.0
    assert errors(city(2, colour="red")) == ["colour: Extra inputs are not permitted"]
    assert errors(city(2, trucks=[{"id": "T", "depot": "D9", "stream": "residual", "capacity_l": 10}])) == [
        "Value error, trucks: T: unknown depot 'D9'"
    ]
    assert errors(city(2, schedule={"timezone": "Mars/Olympus"})) == ["schedule.timezone: Value error, unknown time zone 'Mars/Olympus'"]
    assert errors(city(2, fleet={"mqtt_topic": "city/plans"})) == ["Value error, fleet.mqtt_topic needs the mqtt broker section"]
    assert errors(city(2, fleet={})) == ["fleet: Value error, give webhook_url, mqtt_topic or both"]
    assert errors(city(2, planner={"time_limit_s": 0})) == ["planner.time_limit_s: Input should be greater than 0"]
    assert errors(city(2, history_days=0)) == ["history_days: Input should be greater than or equal to 1"]
    assert errors(city(2, depots=[])) == ["depots: List should have at least 1 item after validation, not 0"]
    twice = city(2)
    twice["bins"] = [*twice["bins"], twice["bins"][0]]  # type: ignore[list-item]
    assert errors(twice) == ["Value error, bins: ids must be unique"]


def test_bins_from_a_csv_file_join_the_inline_ones(tmp_path: Path) -> None:
    f = tmp_path / "bins.csv"
    f.write_text("id,lat,lon,capacity_l,stream\nC1,48.1,2.1,660,paper\nC2,48.2,2.2,1100,\n")
    cfg = WasteConfig.model_validate(city(2, bins_file=str(f)))
    got = cfg.load_bins()
    assert [(b.id, b.stream, b.capacity_l) for b in got] == [("B00", "residual", 1000), ("B01", "residual", 1000), ("C1", "paper", 660), ("C2", "residual", 1100)]
    f.write_text("id,lat,lon,capacity_l\nC1,95,2.1,660\n")
    with pytest.raises(BinImportError, match="row 1: lat"):
        cfg.load_bins()
    f.write_text("id,lat,lon,capacity_l\nB00,48.1,2.1,660\n")
    with pytest.raises(ValueError, match="bin 'B00' is both inline and in"):
        cfg.load_bins()
    assert errors(city(2, bins_file=str(tmp_path / "bins.xlsx"))) == ["Value error, bins_file: expected a .csv, .geojson or .json file"]


def test_plan_body_round_trip() -> None:
    day = datetime(2026, 5, 5, tzinfo=UTC)
    depot = Depot(id="D1", lat=48.0, lon=2.0)
    stop = Stop("B1", 48.1, 2.1, day + timedelta(hours=6, minutes=5), day + timedelta(hours=6, minutes=7), 900, True, 0)
    plan = Plan(
        day,
        (Route("T1", "residual", depot, (stop,), 12.345, 900, day + timedelta(hours=6), day + timedelta(hours=7), 1),),
        (Unvisited("B2", True, "too_big_for_truck", 48.2, 2.2),),
        0.5,
        12345,
    )
    body = plan_to_json(plan)
    assert plan_from_json(body) == plan
    assert body["km"] == 12.345
    assert plan_from_json(body).to_geojson() == plan.to_geojson()
    with pytest.raises(ValueError, match="unknown reason"):
        plan_from_json({**body, "unvisited": [{"bin_id": "B2", "due": True, "reason": "lost", "lat": 1.0, "lon": 1.0}]})
