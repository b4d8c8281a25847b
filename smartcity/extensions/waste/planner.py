"""A day's collection plan: which bins to empty (due ones plus cheap detours) and the fleet's routes, solved with PyVRP.

Selection: a bin is *due* when its forecast crosses its threshold before the next feasible
visit (the end of the next planning day's shifts); the solver must take it. A bin above
`optional_min_level` is *optional*: a prize-collecting client worth `detour_prize_m` metres of
driving when full, so the solver takes it when the detour is cheaper than its prize. Due bins
get a prize far above any route's length instead of a hard constraint, so a day that cannot
take them all still has a plan, and the plan names the due bins it misses. A city that collects
on some weekdays only (`collection_weekdays`) plans those as rounds against the next round, and
`urgent_weekdays` as runs to the bins that would overflow before it.

Units inside the solver: metres, seconds since the plan day's local midnight, litres.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal

import pyvrp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyvrp.stop import MaxRuntime

from .bins import Bin, BinId, TimeWindow, WasteStream
from .distances import DistanceSource, Haversine, Point
from .forecast import FillForecast

DUE_PRIZE_M = 1_000_000  # 1,000 km: more than any day's route, so a due bin is always worth it
MAX_CLIENTS = 5_000


class Depot(BaseModel):
    """Where trucks start and end their shift."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: BinId
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class Truck(BaseModel):
    """A kind of truck: `count` identical vehicles of one stream, based at one depot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: BinId = Field(description="the truck (or truck kind) id the fleet system knows")
    depot: BinId = Field(description="id of its depot")
    stream: WasteStream = Field(description="the one waste stream it collects")
    capacity_l: int = Field(gt=0, le=1_000_000, description="litres of bin volume it takes before unloading")
    shift: TimeWindow = Field(
        default_factory=lambda: TimeWindow(start=time(6, 0), end=time(14, 0)), description="local working hours"
    )
    count: int = Field(1, ge=1, le=500)
    max_reloads: int = Field(0, ge=0, le=10, description="trips back to its depot to unload within a shift")


class PlannerConfig(BaseModel):
    """How bins are chosen and how long the solver searches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_limit_s: float = Field(10.0, gt=0, le=600, description="PyVRP search time")
    seed: int = Field(0, ge=0)
    optional_min_level: float = Field(0.6, ge=0, le=1, description="bins below this are never detoured to")
    detour_prize_m: int = Field(1_000, ge=0, le=100_000, description="metres of detour a full optional bin is worth")
    horizon_h: float = Field(24.0, gt=0, le=24 * 14, description="hours to the next feasible visit")
    collection_weekdays: tuple[int, ...] | None = Field(
        None,
        min_length=1,
        description="local weekdays (Monday = 0) of full rounds: a bin is due when it would reach its threshold "
        "before the end of the next round's shifts (replaces horizon_h); None: every day is a round",
    )
    urgent_weekdays: tuple[int, ...] = Field(
        (),
        description="other weekdays the trucks go out, only to bins that would overflow (level 1) before the end "
        "of the next round's shifts; on a weekday in neither list the plan has no routes",
    )

    @field_validator("collection_weekdays", "urgent_weekdays")
    @classmethod
    def _weekdays(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and not set(v) <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return None if v is None else tuple(sorted(set(v)))

    def day_kind(self, weekday: int) -> Literal["round", "urgent", "off"]:
        """What the trucks do on a weekday: a full round, only bins about to overflow, or nothing."""
        if self.collection_weekdays is None or weekday in self.collection_weekdays:
            return "round"
        return "urgent" if weekday in self.urgent_weekdays else "off"

    def days_to_next_round(self, weekday: int) -> int | None:
        """Days from `weekday` to the next full round after it (None: every day is one; horizon_h applies)."""
        if self.collection_weekdays is None:
            return None
        return min((w - weekday - 1) % 7 + 1 for w in self.collection_weekdays)


@dataclass(frozen=True, slots=True)
class BinState:
    """What the planner knows of a bin: its last level, when, and its forecast (None: level only)."""

    bin: Bin
    level: float
    t: datetime
    forecast: FillForecast | None = None

    def level_at(self, t: datetime) -> float:
        if self.forecast is None:
            return self.level
        return self.forecast.level_at(self.level, self.t, t)


@dataclass(frozen=True, slots=True)
class Candidate:
    bin: Bin
    due: bool
    expected_level: float  # at the end of today's shifts, capped at 1
    prize_m: int


@dataclass(frozen=True, slots=True)
class Stop:
    bin_id: str
    lat: float
    lon: float
    arrive: datetime
    depart: datetime
    litres: int  # expected volume taken here
    due: bool
    trip: int = 0  # 0 until the truck's first unloading at the depot, then 1, ...


@dataclass(frozen=True, slots=True)
class Route:
    truck_id: str
    stream: str
    depot: Depot
    stops: tuple[Stop, ...]
    km: float
    load_l: int  # over all trips
    start: datetime
    end: datetime
    trips: int = 1


@dataclass(frozen=True, slots=True)
class Unvisited:
    bin_id: str
    due: bool
    reason: Literal["not_chosen", "no_truck_for_stream", "too_big_for_truck"]
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Plan:
    day: datetime  # local midnight of the plan day
    routes: tuple[Route, ...]
    unvisited: tuple[Unvisited, ...]
    solve_s: float
    objective: int = field(default=0)

    @property
    def km(self) -> float:
        return sum(r.km for r in self.routes)

    @property
    def missed_due(self) -> tuple[str, ...]:
        return tuple(u.bin_id for u in self.unvisited if u.due)

    def visited(self) -> set[str]:
        return {s.bin_id for r in self.routes for s in r.stops}

    def to_geojson(self) -> dict[str, object]:
        """A FeatureCollection: a LineString per route (depot, stops, depot) and a Point per stop and unvisited bin."""
        feats: list[dict[str, object]] = []
        for n, r in enumerate(self.routes):
            line = [[r.depot.lon, r.depot.lat], *[[s.lon, s.lat] for s in r.stops], [r.depot.lon, r.depot.lat]]
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": line},
                    "properties": {
                        "kind": "route",
                        "route": n,
                        "truck": r.truck_id,
                        "stream": r.stream,
                        "km": round(r.km, 3),
                        "load_l": r.load_l,
                        "start": r.start.isoformat(),
                        "end": r.end.isoformat(),
                        "stops": len(r.stops),
                    },
                }
            )
            for k, s in enumerate(r.stops):
                feats.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                        "properties": {
                            "kind": "stop",
                            "route": n,
                            "sequence": k + 1,
                            "bin": s.bin_id,
                            "arrive": s.arrive.isoformat(),
                            "depart": s.depart.isoformat(),
                            "litres": s.litres,
                            "due": s.due,
                        },
                    }
                )
        for u in self.unvisited:
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [u.lon, u.lat]},
                    "properties": {"kind": "unvisited", "bin": u.bin_id, "due": u.due, "reason": u.reason},
                }
            )
        return {"type": "FeatureCollection", "features": feats}


def select(
    states: Sequence[BinState],
    shift_end: datetime,
    next_visit: datetime,
    config: PlannerConfig,
    due_level: float | None = None,
) -> list[Candidate]:
    """Due bins (threshold, or `due_level`, crossed before `next_visit`) and optional ones (above the minimum level)."""
    out: list[Candidate] = []
    for st in states:
        b = st.bin
        expected = min(1.0, max(0.0, st.level_at(shift_end)))
        due = st.level_at(next_visit) >= (b.threshold if due_level is None else due_level)
        if due:
            out.append(Candidate(b, True, expected, DUE_PRIZE_M))
        elif expected >= config.optional_min_level and config.detour_prize_m > 0:
            out.append(Candidate(b, False, expected, max(1, round(config.detour_prize_m * expected))))
    return out


def plan_day(
    states: Sequence[BinState],
    depots: Sequence[Depot],
    trucks: Sequence[Truck],
    day: datetime,
    config: PlannerConfig | None = None,
    distances: DistanceSource | None = None,
) -> Plan:
    """The plan for the day starting at `day` (timezone-aware local midnight of the city)."""
    cfg = config or PlannerConfig()
    if day.tzinfo is None:
        raise ValueError("day must be timezone-aware")
    if not trucks:
        raise ValueError("no trucks")
    last_end = max(t.shift.seconds()[1] for t in trucks)
    shift_end = day + timedelta(seconds=last_end)
    kind = cfg.day_kind(day.weekday())
    if kind == "off":
        return Plan(day, (), (), 0.0)
    days = cfg.days_to_next_round(day.weekday())
    next_visit = shift_end + (timedelta(hours=cfg.horizon_h) if days is None else timedelta(days=days))
    if kind == "urgent":  # only what would overflow before the next round, no detours
        cfg = cfg.model_copy(update={"detour_prize_m": 0})
    cands = select(states, shift_end, next_visit, cfg, due_level=1.0 if kind == "urgent" else None)
    return route(cands, depots, trucks, day, cfg, distances)


def solve_data(data: pyvrp.ProblemData, config: PlannerConfig) -> pyvrp.Result:
    """The one way this extension runs PyVRP (the bench measures its gap to best-known solutions through it)."""
    return pyvrp.solve(data, stop=MaxRuntime(config.time_limit_s), seed=config.seed, collect_stats=False, display=False)


def _routable(
    cands: Sequence[Candidate], biggest: dict[str, int]
) -> tuple[list[tuple[Candidate, int]], list[Unvisited]]:
    """(candidate, litres) a truck of its stream can take, and the others with the reason."""
    unvisited: list[Unvisited] = []
    clients: list[tuple[Candidate, int]] = []
    for c in cands:
        litres = max(1, round(c.expected_level * c.bin.capacity_l))
        if c.bin.stream not in biggest:
            unvisited.append(Unvisited(c.bin.id, c.due, "no_truck_for_stream", c.bin.lat, c.bin.lon))
        elif litres > biggest[c.bin.stream]:
            unvisited.append(Unvisited(c.bin.id, c.due, "too_big_for_truck", c.bin.lat, c.bin.lon))
        else:
            clients.append((c, litres))
    return clients, unvisited


def route(
    cands: Sequence[Candidate],
    depots: Sequence[Depot],
    trucks: Sequence[Truck],
    day: datetime,
    config: PlannerConfig | None = None,
    distances: DistanceSource | None = None,
) -> Plan:
    """Routes the fleet over the candidates with PyVRP; candidates it cannot or need not take are unvisited."""
    cfg = config or PlannerConfig()
    dist_src = distances or Haversine()
    depot_pos = {d.id: i for i, d in enumerate(depots)}
    for t in trucks:
        if t.depot not in depot_pos:
            raise ValueError(f"truck {t.id}: unknown depot {t.depot!r}")
    streams = sorted({t.stream for t in trucks})
    dim = {s: i for i, s in enumerate(streams)}
    biggest = {s: max(t.capacity_l for t in trucks if t.stream == s) for s in streams}

    clients, unvisited = _routable(cands, biggest)
    if len(clients) > MAX_CLIENTS:
        raise ValueError(f"{len(clients)} bins to route: more than {MAX_CLIENTS}")
    if not clients:
        return Plan(day, (), tuple(unvisited), 0.0)

    points = [Point(d.id, d.lat, d.lon) for d in depots] + [Point(c.bin.id, c.bin.lat, c.bin.lon) for c, _ in clients]
    dist, dur = dist_src.matrix(points)
    nd = len(depots)
    locations = [pyvrp.Location(p.lon, p.lat) for p in points]
    py_depots = [pyvrp.Depot(i) for i in range(nd)]
    py_clients = []
    for k, (c, litres) in enumerate(clients):
        load = [0] * len(streams)
        load[dim[c.bin.stream]] = litres
        early, late = c.bin.access.seconds()
        py_clients.append(
            pyvrp.Client(
                nd + k,
                pickup=load,
                service_duration=c.bin.service_s,
                tw_early=early,
                tw_late=late,
                prize=c.prize_m,
                required=False,
                name=c.bin.id,
            )
        )
    vtypes = []
    for t in trucks:
        cap = [0] * len(streams)
        cap[dim[t.stream]] = t.capacity_l
        early, late = t.shift.seconds()
        di = depot_pos[t.depot]
        vtypes.append(
            pyvrp.VehicleType(
                t.count,
                capacity=cap,
                start_depot=di,
                end_depot=di,
                tw_early=early,
                tw_late=late,
                shift_duration=late - early,
                reload_depots=[di] if t.max_reloads else [],
                max_reloads=t.max_reloads,
                name=t.id,
            )
        )
    # pyvrp's stub spells the matrix type ndarray[int], which no real array matches
    data = pyvrp.ProblemData(locations, py_clients, py_depots, vtypes, [dist], [dur])  # type: ignore[list-item]
    t0 = _time.perf_counter()
    res = solve_data(data, cfg)
    solve_s = _time.perf_counter() - t0
    sol = res.best
    if not sol.is_feasible():
        # the empty solution is feasible (every client is optional), so this is a solver failure
        raise RuntimeError("PyVRP found no feasible plan")

    routes: list[Route] = []
    served: set[int] = set()
    for r in sol.routes():
        truck = trucks[r.vehicle_type()]
        depot = depots[depot_pos[truck.depot]]
        stops: list[Stop] = []
        for act in r.schedule():
            if not act.is_client():
                continue
            c, litres = clients[act.idx]
            served.add(act.idx)
            stops.append(
                Stop(
                    c.bin.id,
                    c.bin.lat,
                    c.bin.lon,
                    day + timedelta(seconds=act.start_time),
                    day + timedelta(seconds=act.end_time),
                    litres,
                    c.due,
                    act.trip,
                )
            )
        routes.append(
            Route(
                truck.id,
                truck.stream,
                depot,
                tuple(stops),
                r.distance() / 1000.0,
                sum(s.litres for s in stops),
                day + timedelta(seconds=r.start_time()),
                day + timedelta(seconds=r.end_time()),
                r.num_trips(),
            )
        )
    for k, (c, _) in enumerate(clients):
        if k not in served:
            unvisited.append(Unvisited(c.bin.id, c.due, "not_chosen", c.bin.lat, c.bin.lon))
    return Plan(day, tuple(routes), tuple(unvisited), solve_s, int(res.cost()))

