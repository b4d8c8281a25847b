"""A plan as stored and sent (JSON) and back: the codec between planner.Plan and the plan body."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from smartcity.core.jsonvalue import JsonValue

from .planner import Depot, Plan, Route, Stop, Unvisited

Doc = Mapping[str, object]


def plan_to_json(plan: Plan) -> dict[str, JsonValue]:
    """The plan as JSON: what the database keeps and the fleet system receives."""
    return {
        "day": plan.day.isoformat(),
        "km": round(plan.km, 3),
        "solve_s": round(plan.solve_s, 3),
        "objective": plan.objective,
        "routes": [
            {
                "truck_id": r.truck_id,
                "stream": r.stream,
                "depot": {"id": r.depot.id, "lat": r.depot.lat, "lon": r.depot.lon},
                "km": r.km,
                "load_l": r.load_l,
                "start": r.start.isoformat(),
                "end": r.end.isoformat(),
                "trips": r.trips,
                "stops": [
                    {
                        "bin_id": s.bin_id,
                        "lat": s.lat,
                        "lon": s.lon,
                        "arrive": s.arrive.isoformat(),
                        "depart": s.depart.isoformat(),
                        "litres": s.litres,
                        "due": s.due,
                        "trip": s.trip,
                    }
                    for s in r.stops
                ],
            }
            for r in plan.routes
        ],
        "unvisited": [
            {"bin_id": u.bin_id, "due": u.due, "reason": u.reason, "lat": u.lat, "lon": u.lon} for u in plan.unvisited
        ],
    }


def _list(doc: Doc, key: str) -> list[Doc]:
    value = doc[key]
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"plan body: {key} is not a list of objects")
    return cast(list[Doc], value)


def _t(doc: Doc, key: str) -> datetime:
    return datetime.fromisoformat(str(doc[key]))


def _f(doc: Doc, key: str) -> float:
    value = doc[key]
    if not isinstance(value, int | float):
        raise ValueError(f"plan body: {key} is not a number")
    return float(value)


def _i(doc: Doc, key: str) -> int:
    value = doc[key]
    if not isinstance(value, int):
        raise ValueError(f"plan body: {key} is not an integer")
    return value


def plan_from_json(doc: Doc) -> Plan:
    """The Plan a stored body describes (raises ValueError on a body this code did not write)."""
    routes = []
    for r in _list(doc, "routes"):
        depot = r["depot"]
        if not isinstance(depot, Mapping):
            raise ValueError("plan body: depot is not an object")
        stops = tuple(
            Stop(
                str(s["bin_id"]), _f(s, "lat"), _f(s, "lon"), _t(s, "arrive"), _t(s, "depart"),
                _i(s, "litres"), bool(s["due"]), _i(s, "trip"),
            )
            for s in _list(r, "stops")
        )
        routes.append(
            Route(
                str(r["truck_id"]), str(r["stream"]),
                Depot(id=str(depot["id"]), lat=_f(depot, "lat"), lon=_f(depot, "lon")),
                stops, _f(r, "km"), _i(r, "load_l"), _t(r, "start"), _t(r, "end"), _i(r, "trips"),
            )
        )
    unvisited = []
    for u in _list(doc, "unvisited"):
        reason = str(u["reason"])
        if reason not in ("not_chosen", "no_truck_for_stream", "too_big_for_truck"):
            raise ValueError(f"plan body: unknown reason {reason!r}")
        unvisited.append(Unvisited(str(u["bin_id"]), bool(u["due"]), reason, _f(u, "lat"), _f(u, "lon")))  # type: ignore[arg-type]
    return Plan(_t(doc, "day"), tuple(routes), tuple(unvisited), _f(doc, "solve_s"), _i(doc, "objective"))
