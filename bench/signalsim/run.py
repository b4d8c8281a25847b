"""One controlled SUMO run: SUMO's own fixed plan, SUMO's actuated tlLogic, or one of our
controllers with cameras in the loop (SUMO -> virtual cameras -> noisy detections -> our tracker
and rules -> lane measures -> controller -> safety layer -> TraCI), scored from SUMO's trip
information (time loss + insertion delay per vehicle), teleports, collisions, and the safety
monitor over the states read back from SUMO."""

from __future__ import annotations

import itertools
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roadsim.sumo import sumo_binary

from smartcity.extensions.signals.config import SignalJunction
from smartcity.extensions.signals.runtime import JunctionRuntime
from smartcity.extensions.signals.safety import SafetyMonitor

from .cameras import VCLASS, ApproachCamera
from .tls import SumoJunction, junction_of

STEP_S = 0.2  # SUMO step = camera frame interval (5 fps)
CONTROL_S = 1.0  # our controllers decide once per second
RETIME_S = 300.0  # the Webster plan is recomputed from the cameras' counts this often
CONTEXT_M = 150.0
STALE_S = 10.0  # the extension's default
_labels = itertools.count()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    net: Path
    routes: tuple[Path, ...]
    tls: str
    begin: float
    end: float
    additional: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    controller: str
    vehicles: int  # trips that started
    arrived: int  # throughput: vehicles that reached their destination
    mean_delay_s: float  # time loss + insertion delay, mean over every started trip (finished or not)
    teleports: int
    collisions: int
    safety_violations: int
    camera_frames: int
    overrides: int  # controller wishes the safety layer replaced (max green, cycle limit)
    fallback_steps: int = 0  # control steps run on the fixed plan (stale or unsure camera data)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def actuated_additional(traci_mod: Any, sc: Scenario, tmp: Path) -> Path:
    """SUMO's static programme turned into an `actuated` tlLogic (same phases; greens 5..50 s unless the
    programme says otherwise), loaded after the network so that it is the active programme."""
    label = f"probe{next(_labels)}"
    traci_mod.start([sumo_binary("sumo"), "-n", str(sc.net), "--no-step-log", "true"], label=label)
    try:
        conn = traci_mod.getConnection(label)
        logic = conn.trafficlight.getAllProgramLogics(sc.tls)[0]
    finally:
        traci_mod.getConnection(label).close()
    rows = []
    for ph in logic.phases:
        green = "y" not in ph.state.lower() and any(c in "Gg" for c in ph.state)
        extra = ""
        if green and ph.duration >= 10:  # netconvert writes minDur = maxDur = duration: give actuation room
            lo = ph.minDur if 0 < ph.minDur < ph.duration else 5.0
            hi = ph.maxDur if ph.duration < ph.maxDur < 1e5 else max(50.0, ph.duration)
            extra = f' minDur="{lo}" maxDur="{hi}"'
        rows.append(f'<phase duration="{ph.duration}" state="{ph.state}"{extra}/>')
    path = tmp / "actuated.add.xml"
    path.write_text(
        f'<additional><tlLogic id="{sc.tls}" type="actuated" programID="sumo_actuated" offset="0">'
        + "".join(rows)
        + "</tlLogic></additional>"
    )
    return path


def _runtime(kind: str, j: SumoJunction, cams: list[ApproachCamera], t0: float) -> JunctionRuntime:
    """The extension's own runtime (measures, fall-back, controller, safety layer) for this junction,
    its lane groups mapped to the cameras' rules as an operator would configure them."""
    rules = {ln.lane_group: ln for cam in cams for ln in cam.lanes}
    doc = j.config.model_dump()
    doc["lane_groups"] = [
        {**lg, "queue": rules[lg["id"]].queue.model_dump(), "count": rules[lg["id"]].count.model_dump()}
        if lg["id"] in rules
        else lg
        for lg in doc["lane_groups"]
    ]
    # webster: the static greens first, retimed from the cameras' counts every RETIME_S
    doc["controller"] = {"type": "fixed" if kind == "webster" else kind}
    junction = SignalJunction.model_validate(doc)
    return JunctionRuntime(junction, t0, stale_after_s=STALE_S, min_confidence=0.5, retime_s=RETIME_S)


def _cameras(conn: Any, j: SumoJunction, seed: int, noise: str) -> list[ApproachCamera]:
    by_edge: dict[str, dict[str, str]] = {}
    for lg, lanes in j.lanes.items():
        by_edge.setdefault(conn.lane.getEdgeID(lanes[0]), {})[lg] = lanes[0]
    return [
        ApproachCamera(f"cam-{k}", conn, lanes, 1.0 / STEP_S, noise, seed * 100 + k)
        for k, (_e, lanes) in enumerate(sorted(by_edge.items()))
    ]


def _centre_junction(conn: Any, j: SumoJunction) -> str:
    """The network junction nearest to the stop lines of the traffic light (context subscriptions need one)."""
    ends = [conn.lane.getShape(lanes[0])[-1] for lanes in j.lanes.values()]
    cx = sum(p[0] for p in ends) / len(ends)
    cy = sum(p[1] for p in ends) / len(ends)
    ids = [i for i in conn.junction.getIDList() if not i.startswith(":")]
    return min(
        ids,
        key=lambda i: (
            (conn.junction.getPosition(i)[0] - cx) ** 2 + (conn.junction.getPosition(i)[1] - cy) ** 2
        ),
    )


def _vehicles(conn: Any, junction: str, types: dict[str, tuple[str, float, float, float]]) -> dict[str, Any]:
    import traci.constants as tc

    res = conn.junction.getContextSubscriptionResults(junction) or {}
    out = {}
    for vid, v in res.items():
        vt = v[tc.VAR_TYPE]
        if vt not in types:
            cls = VCLASS.get(conn.vehicletype.getVehicleClass(vt), "car")
            types[vt] = (
                cls,
                conn.vehicletype.getLength(vt),
                conn.vehicletype.getWidth(vt),
                conn.vehicletype.getHeight(vt),
            )
        cls, ln, wd, ht = types[vt]
        if cls in ("bicycle",) or vt.startswith("person"):
            cls = "bicycle"
        x, y = v[tc.VAR_POSITION]
        out[vid] = (x, y, v[tc.VAR_ANGLE], cls, ln, wd, ht)
    return out


def run(sc: Scenario, controller: str, *, seed: int = 1, noise: str = "realistic") -> RunResult:
    """controller: fixed | sumo_actuated (SUMO's), or webster | actuated | max_pressure (ours, cameras in the loop)."""
    import traci
    import traci.constants as tc

    with tempfile.TemporaryDirectory(prefix=f"signals-{sc.name}-") as tmpd:
        tmp = Path(tmpd)
        adds = list(sc.additional)
        if controller == "sumo_actuated":
            adds.append(actuated_additional(traci, sc, tmp))
        trip = tmp / "trips.xml"
        cmd = [
            sumo_binary("sumo"),
            "-n",
            str(sc.net),
            "-r",
            ",".join(map(str, sc.routes)),
            "--begin",
            f"{sc.begin}",
            "--end",
            f"{sc.end}",
            "--step-length",
            f"{STEP_S}",
            "--seed",
            str(seed),
            "--tripinfo-output",
            str(trip),
            "--tripinfo-output.write-unfinished",
            "true",
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--duration-log.disable",
            "true",
            "--time-to-teleport",
            "300",
            "--collision.action",
            "warn",
        ]
        if adds:
            cmd += ["-a", ",".join(map(str, adds))]
        label = f"run{os.getpid()}-{next(_labels)}"
        env_home = os.path.dirname(os.path.dirname(cmd[0]))
        os.environ.setdefault("SUMO_HOME", env_home)
        traci.start(cmd, label=label)
        conn = traci.getConnection(label)
        teleports = collisions = frames = overrides = fallbacks = 0
        monitor: SafetyMonitor | None = None
        try:
            j = junction_of(conn, sc.tls)
            monitor = SafetyMonitor(j.config, tolerance_s=STEP_S + 1e-6)
            ours = controller not in ("fixed", "sumo_actuated")
            cams: list[ApproachCamera] = []
            rt: JunctionRuntime | None = None
            node = _centre_junction(conn, j)
            if ours:
                cams = _cameras(conn, j, seed, noise)
                conn.junction.subscribeContext(
                    node, tc.CMD_GET_VEHICLE_VARIABLE, CONTEXT_M, [tc.VAR_POSITION, tc.VAR_ANGLE, tc.VAR_TYPE]
                )
                rt = _runtime(controller, j, cams, sc.begin)
                # ours from the first step: all red, then the first phase after the all-red time
                conn.trafficlight.setRedYellowGreenState(
                    sc.tls, j.state_string(dict(rt.layer.step(sc.begin, None).states))
                )
            elif controller == "sumo_actuated":
                conn.trafficlight.setProgram(sc.tls, "sumo_actuated")
            types: dict[str, tuple[str, float, float, float]] = {}
            t = sc.begin
            next_control = sc.begin
            while t < sc.end - 1e-9:
                conn.simulationStep()
                t = conn.simulation.getTime()
                teleports += conn.simulation.getStartingTeleportNumber()
                collisions += conn.simulation.getCollidingVehiclesNumber()
                if rt is not None:
                    veh = _vehicles(conn, node, types)
                    for cam in cams:
                        for ev in cam.film(t, veh):
                            rt.on_event(ev)
                    frames += len(cams)
                    if t >= next_control - 1e-9:
                        d = rt.tick(t)
                        overrides += d.frame.override != "none" and d.frame.target != rt.request
                        fallbacks += d.fallback is not None
                        conn.trafficlight.setRedYellowGreenState(sc.tls, j.state_string(dict(d.frame.states)))
                        next_control += CONTROL_S
                monitor.observe(t, j.read_states(conn.trafficlight.getRedYellowGreenState(sc.tls)))
        finally:
            conn.close()
        started, arrived, delay = _trips(trip)
    if monitor is not None and monitor.violations and os.environ.get("SIGNALS_BENCH_DEBUG"):
        print(sc.name, controller, monitor.violations[:10])
    return RunResult(
        sc.name,
        controller,
        started,
        arrived,
        round(delay, 2),
        teleports,
        collisions,
        len(monitor.violations) if monitor else -1,
        frames,
        overrides,
        fallbacks,
    )


def _trips(path: Path) -> tuple[int, int, float]:
    total = 0.0
    n = arrived = 0
    for el in ET.parse(path).getroot().iter("tripinfo"):
        n += 1
        total += float(el.get("timeLoss", 0.0)) + float(el.get("departDelay", 0.0))
        if float(el.get("arrival", -1)) >= 0:
            arrived += 1
    return n, arrived, total / n if n else 0.0
