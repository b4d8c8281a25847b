"""The four scenes: their SUMO networks, their traffic (routes drawn from a seeded generator),
the camera that films them and the rules drawn on that camera, in world coordinates.

Vehicle types are SUMO vTypes named `<class>` or `<class>__<role>` (role: bay / dp for vehicles
that park); the true class of an object is the part before `__` ("person" for pedestrians).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .sumo import Network

# length, width, height (m) per true class: the 3D box the camera films
DIMS: dict[str, tuple[float, float, float]] = {
    "car": (4.5, 1.8, 1.5),
    "truck": (8.5, 2.5, 3.4),
    "bus": (12.0, 2.55, 3.2),
    "motorcycle": (2.2, 0.8, 1.5),
    "bicycle": (1.8, 0.65, 1.7),
    "person": (0.5, 0.55, 1.75),
}
CLASSES = tuple(DIMS)

_VTYPES = """
<vType id="car" vClass="passenger" length="4.5" width="1.8" height="1.5" maxSpeed="15.5" accel="2.6" decel="4.5" sigma="0.5" speedFactor="normc(1,0.1,0.8,1.2)"/>
<vType id="truck" vClass="truck" length="8.5" width="2.5" height="3.4" maxSpeed="13" accel="1.3" decel="4" sigma="0.5"/>
<vType id="bus" vClass="bus" length="12" width="2.55" height="3.2" maxSpeed="13" accel="1.2" decel="4" sigma="0.5"/>
<vType id="motorcycle" vClass="motorcycle" length="2.2" width="0.8" height="1.5" maxSpeed="17" accel="3.5" decel="6" sigma="0.5" speedFactor="normc(1.05,0.1,0.8,1.3)"/>
<vType id="bicycle" vClass="bicycle" length="1.8" width="0.65" height="1.7" maxSpeed="6.5" accel="1.2" decel="3" sigma="0.5" speedFactor="normc(1,0.15,0.6,1.3)"/>
<vType id="car__bay" vClass="taxi" length="4.5" width="1.8" height="1.5" maxSpeed="15" sigma="0.5"/>
<vType id="truck__bay" vClass="delivery" length="6.5" width="2.2" height="2.8" maxSpeed="13" sigma="0.5"/>
<vType id="car__dp" vClass="passenger" length="4.5" width="1.8" height="1.5" maxSpeed="15" sigma="0.5"/>
<vType id="truck__dp" vClass="truck" length="6.5" width="2.2" height="2.8" maxSpeed="13" sigma="0.5"/>
<vType id="car__ww" vClass="passenger" length="4.5" width="1.8" height="1.5" maxSpeed="12" sigma="0.5"/>
<vType id="motorcycle__ww" vClass="motorcycle" length="2.2" width="0.8" height="1.5" maxSpeed="12" sigma="0.5"/>
"""
# the "bay" trucks are vans: smaller box than a lorry
TYPE_DIMS: dict[str, tuple[float, float, float]] = {"truck__bay": (6.5, 2.2, 2.8), "truck__dp": (6.5, 2.2, 2.8)}

MIX = {"car": 0.70, "truck": 0.06, "bus": 0.03, "motorcycle": 0.08, "bicycle": 0.13}
MIX_NO_BIKE = {"car": 0.80, "truck": 0.07, "bus": 0.04, "motorcycle": 0.09}


def true_class(vtype: str) -> str:
    return vtype.split("__", 1)[0]


def dims_of(vtype: str) -> tuple[float, float, float]:
    return TYPE_DIMS.get(vtype) or DIMS[true_class(vtype)]


@dataclass(frozen=True, slots=True)
class WLine:
    """A counting line on the ground; `in_vec` a world direction across it named `in_name`."""

    id: str
    a: tuple[float, float]
    b: tuple[float, float]
    in_vec: tuple[float, float]
    in_name: str
    out_name: str
    classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WZone:
    """A zone on the ground: wrong_way (with the allowed world direction) or dwell (threshold).

    `polygon` is a quad (4 corners, in order) of the places where the CENTRE of a vehicle may be;
    the rule's zone is what the camera makes of cars standing there (see build.footprint_zone)."""

    id: str
    type: str  # "wrong_way" | "dwell"
    polygon: tuple[tuple[float, float], ...]
    heading_deg: float = 90.0  # compass heading of the vehicles standing in it (the footprint)
    direction: tuple[float, float] = (1.0, 0.0)
    threshold_s: float = 15.0
    classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scene:
    name: str
    camera: Camera
    network: Network
    routes: Callable[[np.random.Generator, float], str]  # (rng, end_s) -> SUMO routes XML
    lines: tuple[WLine, ...]
    zones: tuple[WZone, ...] = ()
    notes: str = ""
    meta: dict[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------ traffic generation


class _Routes:
    """Vehicles and persons with their departure times, written as one sorted SUMO routes file."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.items: list[tuple[float, str]] = []
        self.n = 0

    def arrivals(self, per_hour: float, end_s: float) -> list[float]:
        out: list[float] = []
        t = 0.0
        while True:
            t += float(self.rng.exponential(3600.0 / per_hour))
            if t >= end_s:
                return out
            out.append(t)

    def pick(self, weights: dict[str, float]) -> str:
        keys = list(weights)
        p = np.array([weights[k] for k in keys])
        return keys[int(self.rng.choice(len(keys), p=p / p.sum()))]

    def vehicle(self, t: float, vtype: str, edges: str, stop: str = "") -> None:
        self.n += 1
        body = f"<route edges=\"{edges}\"/>{stop}"
        self.items.append((t, f'<vehicle id="v{self.n}" type="{vtype}" depart="{t:.1f}" departLane="best" '
                              f'departSpeed="max">{body}</vehicle>'))

    def stream(self, per_hour: float, end_s: float, mix: dict[str, float], routes: dict[str, float]) -> None:
        for t in self.arrivals(per_hour, end_s):
            vtype = self.pick(mix)
            edges = self.pick(routes)
            if vtype == "bicycle" and "|" in edges:
                edges = edges.split("|")[1]
            self.vehicle(t, vtype, edges.split("|")[0])

    def person(self, t: float, walk: str) -> None:
        self.n += 1
        self.items.append((t, f'<person id="p{self.n}" depart="{t:.1f}">{walk}</person>'))

    def xml(self) -> str:
        body = "\n".join(x for _, x in sorted(self.items, key=lambda it: it[0]))
        return f"<routes>{_VTYPES}\n{body}\n</routes>\n"


def _edges(*specs: str) -> str:
    return "<edges>\n" + "\n".join(specs) + "\n</edges>\n"


def _nodes(nodes: dict[str, tuple[float, float]], tls: tuple[str, ...] = ()) -> str:
    tl = ' type="traffic_light"'
    rows = [f'<node id="{k}" x="{x}" y="{y}"{tl if k in tls else ""}/>' for k, (x, y) in nodes.items()]
    return "<nodes>\n" + "\n".join(rows) + "\n</nodes>\n"


# ------------------------------------------------------------------ scene 1: signalised junction


def _junction_edge(eid: str, a: str, b: str) -> str:
    # lane 0: pavement; lane 1: bicycle lane; lanes 2-3: general traffic
    return (f'<edge id="{eid}" from="{a}" to="{b}" numLanes="4" speed="13.89">'
            f'<lane index="0" allow="pedestrian" width="2.5"/><lane index="1" allow="bicycle" width="1.6"/></edge>')


def _junction_routes(rng: np.random.Generator, end_s: float) -> str:
    r = _Routes(rng)
    turns = {  # approach -> (straight, right, left) exits
        "SC": ("CN", "CE", "CW"), "NC": ("CS", "CW", "CE"), "EC": ("CW", "CN", "CS"), "WC": ("CE", "CS", "CN"),
    }
    rates = {"SC": 650.0, "NC": 600.0, "EC": 420.0, "WC": 450.0}
    for app, (straight, right, left) in turns.items():
        r.stream(rates[app], end_s, MIX, {f"{app} {straight}": 0.6, f"{app} {right}": 0.22, f"{app} {left}": 0.18})
    arms = ("SC", "CS", "NC", "CN", "EC", "CE", "WC", "CW")
    for t in r.arrivals(400.0, end_s):  # pedestrians crossing the arms on the signalled crossings
        a, b = (arms[int(k)] for k in rng.choice(len(arms), 2, replace=False))
        pa = float(rng.uniform(150.0, 200.0)) if a.endswith("C") else float(rng.uniform(5.0, 50.0))
        pb = float(rng.uniform(5.0, 50.0)) if b.startswith("C") else float(rng.uniform(150.0, 200.0))
        r.person(t, f'<walk from="{a}" to="{b}" departPos="{pa:.1f}" arrivalPos="{pb:.1f}"/>')
    return r.xml()


def junction() -> Scene:
    nodes = {"C": (0.0, 0.0), "N": (0.0, 220.0), "S": (0.0, -220.0), "E": (220.0, 0.0), "W": (-220.0, 0.0)}
    edges = _edges(*(_junction_edge(f"{a}{b}", a, b) for a, b in (
        ("S", "C"), ("C", "S"), ("N", "C"), ("C", "N"), ("E", "C"), ("C", "E"), ("W", "C"), ("C", "W"))))
    return Scene(
        name="junction",
        camera=Camera.looking_at(-12.0, -27.0, (1.0, 1.0)),
        network=Network(_nodes(nodes, tls=("C",)), edges, options=("--tls.default-type", "static",
                                                                    "--crossings.guess", "true")),
        routes=_junction_routes,
        lines=(
            WLine("south-near", (-8.6, -16.0), (8.6, -16.0), (0.0, 1.0), "northbound", "southbound"),
            WLine("east", (15.0, -8.6), (15.0, 8.6), (-1.0, 0.0), "westbound", "eastbound"),
            WLine("north", (-8.6, 22.0), (8.6, 22.0), (0.0, -1.0), "southbound", "northbound"),
            WLine("west", (-14.0, -8.6), (-14.0, 8.6), (1.0, 0.0), "eastbound", "westbound"),
        ),
        notes="signalised 4-way junction (SUMO static programme), bicycle lanes, turning traffic, pedestrians",
    )


# ------------------------------------------------------------------ scene 2: two-way street, bays, double parking


def _parking_routes(rng: np.random.Generator, end_s: float) -> str:
    r = _Routes(rng)
    r.stream(620.0, end_s, MIX, {"WP1 P1P2 P2E": 1.0})
    r.stream(560.0, end_s, MIX, {"EP2 P2P1 P1W": 1.0})
    for t in r.arrivals(110.0, end_s):  # vehicles stopping 20-60 s in the bay
        vtype = "car__bay" if rng.random() < 0.75 else "truck__bay"
        pos = float(rng.uniform(8.0, 50.0))  # the bay lane runs x = -26 .. 26
        dur = float(rng.uniform(20.0, 60.0))
        r.vehicle(t, vtype, "WP1 P1P2 P2E",
                  f'<stop lane="P1P2_0" endPos="{pos:.1f}" duration="{dur:.1f}" parking="false"/>')
    for t in r.arrivals(45.0, end_s):  # double parking on the westbound lane, blocking it
        vtype = "car__dp" if rng.random() < 0.6 else "truck__dp"
        dur = float(rng.uniform(20.0, 60.0))
        r.vehicle(t, vtype, "EP2 P2P1 P1W",
                  f'<stop lane="P2P1_0" endPos="{float(rng.uniform(24.0, 28.0)):.1f}" duration="{dur:.1f}" '
                  'parking="false"/>')
    return r.xml()


def two_way_parking() -> Scene:
    nodes = {"W": (-220.0, 0.0), "P1": (-30.0, 0.0), "P2": (30.0, 0.0), "E": (220.0, 0.0)}
    one = 'numLanes="1" speed="13.89" width="3.3"'
    edges = _edges(
        f'<edge id="WP1" from="W" to="P1" {one}/>',
        '<edge id="P1P2" from="P1" to="P2" numLanes="2" speed="13.89">'
        '<lane index="0" allow="taxi delivery" width="2.5"/><lane index="1" width="3.3"/></edge>',
        f'<edge id="P2E" from="P2" to="E" {one}/>',
        f'<edge id="EP2" from="E" to="P2" {one}/>',
        f'<edge id="P2P1" from="P2" to="P1" {one}/>',
        f'<edge id="P1W" from="P1" to="W" {one}/>',
    )
    return Scene(
        name="two_way_parking",
        camera=Camera.looking_at(-24.0, -15.0, (6.0, 0.0)),
        network=Network(_nodes(nodes), edges, options=("--opposites.guess", "true")),
        routes=_parking_routes,
        lines=(
            WLine("west-near", (-8.0, -6.0), (-8.0, 3.6), (1.0, 0.0), "eastbound", "westbound"),
            WLine("east", (30.0, -6.0), (30.0, 3.6), (1.0, 0.0), "eastbound", "westbound"),
        ),
        zones=(
            WZone("bay-west", "dwell", ((-22.0, -5.3), (0.0, -5.3), (0.0, -3.9), (-22.0, -3.9)), threshold_s=15.0),
            WZone("bay-east", "dwell", ((0.0, -5.3), (24.0, -5.3), (24.0, -3.9), (0.0, -3.9)), threshold_s=15.0),
            WZone("double-parking", "dwell", ((0.0, 1.0), (5.5, 1.0), (5.5, 2.3), (0.0, 2.3)), heading_deg=270.0, threshold_s=15.0),
        ),
        notes="two-way street, a parking bay (stops 20-60 s) and double parking blocking the westbound lane",
    )


# ------------------------------------------------------------------ scene 3: one-way street with contraflow


def _oneway_routes(rng: np.random.Generator, end_s: float) -> str:
    r = _Routes(rng)
    r.stream(1100.0, end_s, MIX, {"WE": 1.0})
    for t in r.arrivals(100.0, end_s):  # drivers going the wrong way up the one-way street
        r.vehicle(t, "car__ww" if rng.random() < 0.6 else "motorcycle__ww", "EW")
    return r.xml()


def one_way_contraflow() -> Scene:
    nodes = {"W": (-220.0, 0.0), "E": (220.0, 0.0)}
    edges = _edges(
        '<edge id="WE" from="W" to="E" numLanes="2" speed="13.89" width="3.2"/>',
        # the contraflow: a narrow lane in the opposite direction that the wrong_way rule forbids
        '<edge id="EW" from="E" to="W" numLanes="1" speed="11" width="2.8" allow="passenger motorcycle"/>',
    )
    street = ((-5.0, -5.6), (30.0, -5.6), (30.0, 2.2), (-5.0, 2.2))
    return Scene(
        name="one_way_contraflow",
        camera=Camera.looking_at(-26.0, 12.0, (6.0, -2.0)),
        network=Network(_nodes(nodes), edges),
        routes=_oneway_routes,
        lines=(
            WLine("west-near", (-10.0, -6.6), (-10.0, 3.0), (1.0, 0.0), "eastbound", "westbound"),
            WLine("east", (34.0, -6.6), (34.0, 3.0), (1.0, 0.0), "eastbound", "westbound"),
        ),
        zones=(WZone("one-way", "wrong_way", street, direction=(1.0, 0.0),
                     classes=("car", "truck", "bus", "motorcycle")),),
        notes="one-way street (2 lanes eastbound) with cars and motorcycles driving westbound against it",
    )


# ------------------------------------------------------------------ scene 4: pedestrian crossing


def _crossing_routes(rng: np.random.Generator, end_s: float) -> str:
    r = _Routes(rng)
    r.stream(520.0, end_s, MIX, {"WM ME": 1.0})
    r.stream(480.0, end_s, MIX, {"EM MW": 1.0})
    for t in r.arrivals(500.0, end_s):  # pedestrians crossing the street, both ways, on either arm
        south_to_north = rng.random() < 0.5
        west = rng.random() < 0.5
        if west:
            a, pa, b, pb = "WM", float(rng.uniform(150.0, 215.0)), "MW", float(rng.uniform(2.0, 60.0))
        else:
            a, pa, b, pb = "ME", float(rng.uniform(2.0, 60.0)), "EM", float(rng.uniform(150.0, 215.0))
        if not south_to_north:
            a, pa, b, pb = b, pb, a, pa
        r.person(t, f'<walk from="{a}" to="{b}" departPos="{pa:.1f}" arrivalPos="{pb:.1f}"/>')
    for t in r.arrivals(240.0, end_s):  # pedestrians walking along the pavements
        if rng.random() < 0.5:
            r.person(t, '<walk from="WM" to="ME" departPos="120"/>')
        else:
            r.person(t, '<walk from="EM" to="MW" departPos="120"/>')
    return r.xml()


def ped_crossing() -> Scene:
    nodes = {"W": (-220.0, 0.0), "M": (0.0, 0.0), "E": (220.0, 0.0)}
    e = 'numLanes="1" speed="13.89" width="3.3" sidewalkWidth="2.5"'
    edges = _edges(*(f'<edge id="{a}{b}" from="{a}" to="{b}" {e}/>' for a, b in
                     (("W", "M"), ("M", "W"), ("M", "E"), ("E", "M"))))
    crossing = '<connections>\n<crossing node="M" edges="ME EM" priority="true" width="4"/>\n</connections>\n'
    return Scene(
        name="ped_crossing",
        camera=Camera.looking_at(-20.0, -14.0, (6.0, 0.0)),
        network=Network(_nodes(nodes), edges, crossing),
        routes=_crossing_routes,
        lines=(
            WLine("west-near", (-7.0, -3.6), (-7.0, 3.6), (1.0, 0.0), "eastbound", "westbound",
                  classes=("car", "truck", "bus", "motorcycle", "bicycle")),
            WLine("east", (26.0, -3.6), (26.0, 3.6), (1.0, 0.0), "eastbound", "westbound",
                  classes=("car", "truck", "bus", "motorcycle", "bicycle")),
            WLine("crossing", (-2.5, 0.0), (2.5, 0.0), (0.0, 1.0), "northbound", "southbound", classes=("person",)),
        ),
        notes="two-way street with a zebra crossing (pedestrians have priority; cars stop for them)",
    )


SCENES: dict[str, Callable[[], Scene]] = {
    "junction": junction,
    "two_way_parking": two_way_parking,
    "one_way_contraflow": one_way_contraflow,
    "ped_crossing": ped_crossing,
}


def heading_deg(vx: float, vy: float) -> float:
    return math.degrees(math.atan2(vx, vy))
