"""extensions.waste.planner and distances: bin choice, capacities, time windows, streams, GeoJSON, road-network clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from smartcity.extensions.waste import (
    Bin,
    BinState,
    Depot,
    Haversine,
    MatrixFile,
    OsrmTable,
    Plan,
    PlannerConfig,
    Point,
    RoadNetworkError,
    TimeWindow,
    Truck,
    fit,
    plan_day,
)

DAY = datetime(2026, 5, 4, tzinfo=UTC)
DEPOT = Depot(id="D", lat=52.50, lon=13.40)
CFG = PlannerConfig(time_limit_s=0.5)


def _grid_bins(n: int, stream: str = "residual", capacity_l: int = 1100, **kw: object) -> list[Bin]:
    rng = np.random.default_rng(n)
    return [
        Bin.model_validate(
            {
                "id": f"{stream[:1].upper()}{i}",
                "lat": 52.50 + float(rng.uniform(-0.02, 0.02)),
                "lon": 13.40 + float(rng.uniform(-0.03, 0.03)),
                "capacity_l": capacity_l,
                "stream": stream,
                **kw,
            }
        )
        for i in range(n)
    ]


def _full(bins: list[Bin], level: float = 0.95) -> list[BinState]:
    return [BinState(b, level, DAY) for b in bins]


def _check_feasible(plan: Plan, trucks: list[Truck], bins: list[Bin]) -> None:
    by_id = {b.id: b for b in bins}
    cap = {t.id: t for t in trucks}
    for r in plan.routes:
        truck = cap[r.truck_id]
        for trip in range(r.trips):
            assert sum(s.litres for s in r.stops if s.trip == trip) <= truck.capacity_l
        assert r.trips - 1 <= truck.max_reloads
        assert r.load_l == sum(s.litres for s in r.stops)
        lo, hi = truck.shift.seconds()
        assert DAY + timedelta(seconds=lo) <= r.start <= r.end <= DAY + timedelta(seconds=hi)
        for s in r.stops:
            b = by_id[s.bin_id]
            assert b.stream == r.stream
            early, late = b.access.seconds()
            assert DAY + timedelta(seconds=early) <= s.arrive <= DAY + timedelta(seconds=late)
            assert s.depart - s.arrive == timedelta(seconds=b.service_s)


def test_capacity_splits_the_due_bins_over_trucks() -> None:
    bins = _grid_bins(20)
    # each bin yields 0.95 * 1100 = 1045 l: one truck of 6,000 l takes at most five bins
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=6_000, count=5)]
    plan = plan_day(_full(bins), [DEPOT], trucks, DAY, CFG)
    _check_feasible(plan, trucks, bins)
    assert plan.visited() == {b.id for b in bins}
    assert len(plan.routes) == 4
    assert all(len(r.stops) <= 5 for r in plan.routes)
    assert plan.missed_due == ()
    assert plan.km == pytest.approx(sum(r.km for r in plan.routes)) and plan.km > 0


def test_a_truck_unloads_at_its_depot_between_trips() -> None:
    bins = _grid_bins(8)
    # 1045 l a bin, 2,500 l a trip: two bins a trip, four trips, three reloads
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=2_500, max_reloads=3)]
    plan = plan_day(_full(bins), [DEPOT], trucks, DAY, CFG)
    _check_feasible(plan, trucks, bins)
    assert plan.visited() == {b.id for b in bins}
    (r,) = plan.routes
    assert r.trips == 4
    assert sorted({s.trip for s in r.stops}) == [0, 1, 2, 3]


def test_bins_are_emptied_inside_their_access_windows() -> None:
    bins = _grid_bins(6, service_s=300)
    narrow = [
        b.model_copy(update={"access": TimeWindow(start=time(9 + i % 3), end=time(9 + i % 3, 30))}) for i, b in enumerate(bins)
    ]
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=50_000, shift=TimeWindow(start=time(6), end=time(14)))]
    plan = plan_day(_full(narrow), [DEPOT], trucks, DAY, CFG)
    _check_feasible(plan, trucks, narrow)
    assert plan.visited() == {b.id for b in narrow}
    arrivals = sorted(s.arrive for r in plan.routes for s in r.stops)
    assert arrivals[0] >= DAY + timedelta(hours=9)


def test_a_due_bin_the_shift_cannot_reach_is_reported_missed() -> None:
    bins = _grid_bins(3)
    late = bins[0].model_copy(update={"access": TimeWindow(start=time(20), end=time(21))})
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=50_000)]
    plan = plan_day(_full([late, *bins[1:]]), [DEPOT], trucks, DAY, CFG)
    assert plan.missed_due == (late.id,)
    assert plan.visited() == {b.id for b in bins[1:]}


def test_streams_go_to_their_own_trucks_and_a_stream_without_trucks_is_unvisited() -> None:
    residual, paper, glass = _grid_bins(5), _grid_bins(4, stream="paper"), _grid_bins(2, stream="glass")
    trucks = [
        Truck(id="R", depot="D", stream="residual", capacity_l=20_000),
        Truck(id="P", depot="D", stream="paper", capacity_l=20_000),
    ]
    plan = plan_day(_full(residual + paper + glass), [DEPOT], trucks, DAY, CFG)
    _check_feasible(plan, trucks, residual + paper + glass)
    assert {(r.truck_id, s.bin_id[0]) for r in plan.routes for s in r.stops} == {("R", "R"), ("P", "P")}
    assert {(u.bin_id, u.reason) for u in plan.unvisited} == {("G0", "no_truck_for_stream"), ("G1", "no_truck_for_stream")}


def test_selection_takes_due_bins_and_cheap_detours_and_leaves_empty_ones() -> None:
    bins = _grid_bins(4)
    rising = fit([0.0, 3600.0 * 10], [0.0, 0.1])  # 0.01 per hour
    states = [
        BinState(bins[0], 0.70, DAY, rising),  # 0.70 + 14 h * 0.01 = 0.84 by 14:00: due (threshold 0.8)
        BinState(bins[1], 0.40, DAY, rising),  # 0.54 by 14:00, 0.78 by tomorrow 14:00: optional detour
        BinState(bins[2], 0.10, DAY, rising),  # 0.24 by 14:00: left
        BinState(bins[3], 0.55, DAY),  # no forecast: level only, optional
    ]
    # detours here are cheap against the prize
    cfg = PlannerConfig(time_limit_s=0.5, detour_prize_m=50_000, optional_min_level=0.5)
    plan = plan_day(states, [DEPOT], [Truck(id="T", depot="D", stream="residual", capacity_l=50_000)], DAY, cfg)
    assert plan.visited() == {bins[0].id, bins[1].id, bins[3].id}
    due = {s.bin_id: s.due for r in plan.routes for s in r.stops}
    assert due == {bins[0].id: True, bins[1].id: False, bins[3].id: False}
    stop0 = next(s for r in plan.routes for s in r.stops if s.bin_id == bins[0].id)
    assert stop0.litres == round(0.84 * 1100)
    # with no prize for detours only the due bin is taken
    stingy = plan_day(states, [DEPOT], [Truck(id="T", depot="D", stream="residual", capacity_l=50_000)], DAY,
                      PlannerConfig(time_limit_s=0.5, detour_prize_m=0))
    assert stingy.visited() == {bins[0].id}


def test_collection_weekdays_set_the_next_visit_and_a_day_off_has_no_routes() -> None:
    bins = _grid_bins(2)
    rising = fit([0.0, 3600.0 * 10], [0.0, 0.1])  # 0.01 per hour
    # bins[0]: 0.40 at Monday 00:00, 0.78 by Tuesday 14:00, 1.02 by Wednesday 14:00
    # bins[1]: 0.10 at Monday 00:00, 0.72 by Wednesday 14:00
    states = [BinState(bins[0], 0.40, DAY, rising), BinState(bins[1], 0.10, DAY, rising)]
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=50_000)]
    every_day = plan_day(states, [DEPOT], trucks, DAY, PlannerConfig(time_limit_s=0.5, detour_prize_m=0))
    assert every_day.visited() == set()
    mwf = PlannerConfig(time_limit_s=0.5, detour_prize_m=0, collection_weekdays=(4, 0, 2, 2))
    assert mwf.collection_weekdays == (0, 2, 4)
    assert [mwf.days_to_next_round(w) for w in range(7)] == [2, 1, 2, 1, 3, 2, 1]
    assert [mwf.day_kind(w) for w in (0, 1, 4, 6)] == ["round", "off", "round", "off"]
    monday = plan_day(states, [DEPOT], trucks, DAY, mwf)  # the next visit is Wednesday's
    assert {s.bin_id: s.due for r in monday.routes for s in r.stops} == {bins[0].id: True}
    tuesday = plan_day(states, [DEPOT], trucks, DAY + timedelta(days=1), mwf)
    assert tuesday.routes == () and tuesday.unvisited == ()
    # an urgent day takes only what would overflow (level 1) before the next round: bins[0], not bins[1]
    urgent = mwf.model_copy(update={"urgent_weekdays": (1,), "detour_prize_m": 50_000})
    assert urgent.day_kind(1) == "urgent"
    tuesday = plan_day(states, [DEPOT], trucks, DAY + timedelta(days=1), urgent)
    assert {s.bin_id: s.due for r in tuesday.routes for s in r.stops} == {bins[0].id: True}
    assert tuesday.unvisited == ()
    with pytest.raises(ValidationError):
        PlannerConfig(collection_weekdays=(7,))


def test_geojson_export_has_a_line_per_route_and_a_point_per_stop_and_unvisited_bin() -> None:
    bins = _grid_bins(8)
    glass = _grid_bins(1, stream="glass")
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=5_000, count=3)]
    plan = plan_day(_full(bins + glass), [DEPOT], trucks, DAY, CFG)
    doc = json.loads(json.dumps(plan.to_geojson()))
    lines = [f for f in doc["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in doc["features"] if f["properties"]["kind"] == "stop"]
    assert len(lines) == len(plan.routes) >= 2
    assert sorted(p["properties"]["bin"] for p in points) == sorted(b.id for b in bins)
    assert all(ln["geometry"]["coordinates"][0] == [DEPOT.lon, DEPOT.lat] == ln["geometry"]["coordinates"][-1] for ln in lines)
    (left,) = [f for f in doc["features"] if f["properties"]["kind"] == "unvisited"]
    assert left["properties"] == {"kind": "unvisited", "bin": "G0", "due": True, "reason": "no_truck_for_stream"}
    assert left["geometry"]["coordinates"] == [glass[0].lon, glass[0].lat]


def test_haversine_matrix_is_the_great_circle_times_the_detour_factor() -> None:
    pts = [Point("a", 0.0, 0.0), Point("b", 0.0, 1.0)]
    dist, dur = Haversine(detour_factor=1.5, speed_kmh=36.0).matrix(pts)
    one_degree = 2 * np.pi * 6_371_008.8 / 360
    assert dist[0, 1] == dist[1, 0] == round(1.5 * one_degree)
    assert dur[0, 1] == round(1.5 * one_degree / 10.0)
    assert dist[0, 0] == 0


def test_matrix_file_answers_in_the_order_asked_and_names_missing_points() -> None:
    text = json.dumps({"ids": ["D", "A", "B"], "distance_m": [[0, 5, 7], [6, 0, 2], [8, 3, 0]], "duration_s": [[0, 1, 2], [3, 0, 4], [5, 6, 0]]})
    mf = MatrixFile.from_json(text)
    dist, dur = mf.matrix([Point("B", 0, 0), Point("D", 0, 0)])
    assert dist.tolist() == [[0, 8], [7, 0]]
    assert dur.tolist() == [[0, 5], [2, 0]]
    with pytest.raises(RoadNetworkError, match="Z"):
        mf.matrix([Point("Z", 0, 0)])
    with pytest.raises(ValueError, match="distance_m"):
        MatrixFile.from_json(json.dumps({"ids": ["A"], "distance_m": [[0, 1]], "duration_s": [[0]]}))


def _osrm_handler(calls: list[httpx.Request]) -> httpx.MockTransport:
    """A stand-in OSRM: distance = 1000 * |i - j| between points named by their longitude, duration a tenth."""

    def handle(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        coords = req.url.path.split("/table/v1/driving/")[1].split(";")
        lons = [float(c.split(",")[0]) for c in coords]
        src = [int(i) for i in req.url.params["sources"].split(";")]
        dst = [int(i) for i in req.url.params["destinations"].split(";")]
        d = [[None if lons[i] == 99 or lons[j] == 99 else 1000.0 * abs(lons[i] - lons[j]) for j in dst] for i in src]
        s = [[None if v is None else v / 10 for v in row] for row in d]
        return httpx.Response(200, json={"code": "Ok", "distances": d, "durations": s})

    return httpx.MockTransport(handle)


def test_osrm_table_client_assembles_blocks_and_marks_unreachable_points() -> None:
    calls: list[httpx.Request] = []
    pts = [Point(f"p{i}", 0.0, float(i)) for i in range(5)] + [Point("island", 0.0, 99.0)]
    with httpx.Client(transport=_osrm_handler(calls)) as client:
        dist, dur = OsrmTable(client, "http://127.0.0.1:5000", block=2).matrix(pts)
    assert len(calls) == 9  # 3 blocks squared
    assert dist[1, 4] == 3000 and dist[4, 0] == 4000 and dur[4, 0] == 400
    assert dist[0, 5] >= 10_000_000 and dist[5, 5] == 0


def test_osrm_errors_are_typed() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "TooBig", "message": "too many"})

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client, pytest.raises(RoadNetworkError, match="400"):
        OsrmTable(client, "http://127.0.0.1:5000").matrix([Point("a", 0, 0), Point("b", 0, 1)])


def test_a_plan_on_the_road_network_uses_its_distances() -> None:
    calls: list[httpx.Request] = []
    bins = _grid_bins(4)
    trucks = [Truck(id="T", depot="D", stream="residual", capacity_l=50_000)]
    with httpx.Client(transport=_osrm_handler(calls)) as client:
        plan = plan_day(_full(bins), [DEPOT], trucks, DAY, CFG, distances=OsrmTable(client, "http://127.0.0.1:5000"))
    # all points lie within 0.03 degrees of longitude of the depot: the stand-in's km are 1000 * delta-lon
    lons = [DEPOT.lon] + [b.lon for b in bins]
    assert plan.km == pytest.approx(2 * (max(lons) - min(lons)), abs=0.01)
