"""Lane measures from camera rule events: queue (occupancy samples over a queue zone), arrivals
and flow (crossings of a counting line), downstream queue, each with its time, so that stale
data can be told from fresh. Pure: no I/O."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from smartcity.core.events import RuleEvent

from .controllers import LaneMeasure
from .junction import LaneGroup

FLOW_WINDOW_S = 300.0
MIN_FLOW_WINDOW_S = 60.0
MAX_ARRIVALS = 10_000  # per lane group in the window (bounded whatever the camera says)
# how far a camera's measures are trusted, by its health: a degraded camera (inference failing,
# frames dropped, analysis below its rate) still sends events, but they may miss vehicles
HEALTH_CONFIDENCE = {"online": 1.0, "degraded": 0.25, "starting": 0.0, "offline": 0.0}


@dataclass(slots=True)
class _Book:
    queue: float = 0.0
    queue_t: float | None = None
    downstream: float = 0.0
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_ARRIVALS))
    last_arrival: float | None = None
    count_t: float | None = None  # last time the count rule was heard of
    confidence: float = 1.0  # set from outside (set_confidence)
    cameras: dict[str, float] = field(default_factory=dict)  # camera id -> confidence from its health

    def trust(self) -> float:
        return min(self.confidence, *self.cameras.values()) if self.cameras else self.confidence


class MeasureBook:
    """Keeps each lane group's latest measures from the events of the rules it maps to."""

    def __init__(self, lane_groups: Iterable[LaneGroup], t0: float) -> None:
        self.t0 = t0
        self.lanes = {lg.id: lg for lg in lane_groups}
        self.books = {lg: _Book() for lg in self.lanes}
        self.routes: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for lg in self.lanes.values():
            for role, ref in (("queue", lg.queue), ("count", lg.count), ("downstream", lg.downstream)):
                if ref is not None:
                    self.routes.setdefault((ref.camera_id, ref.rule_id), []).append((lg.id, role))

    def wants(self, camera_id: str, rule_id: str) -> bool:
        return (camera_id, rule_id) in self.routes

    def on_event(self, ev: RuleEvent) -> None:
        for lg, role in self.routes.get((ev.camera_id, ev.rule_id), ()):
            b = self.books[lg]
            if role == "count" and ev.kind == "crossing":
                b.count_t = ev.t
                if ev.payload.get("direction") == self.lanes[lg].arrivals_direction:
                    b.arrivals.append(ev.t)
                    b.last_arrival = ev.t
            elif ev.kind == "occupancy_sample" and isinstance(ev.payload.get("mean"), int | float):
                if role == "queue":
                    b.queue, b.queue_t = float(ev.payload["mean"]), ev.t
                elif role == "downstream":
                    b.downstream = float(ev.payload["mean"])

    def set_confidence(self, lane_group: str, confidence: float) -> None:
        self.books[lane_group].confidence = min(1.0, max(0.0, confidence))

    def camera_health(self, camera_id: str, state: str) -> None:
        """A camera's health report: the lane groups it measures are trusted as HEALTH_CONFIDENCE
        says (a lane group measured by two cameras is as sure as the less healthy one)."""
        conf = HEALTH_CONFIDENCE.get(state, 0.0)
        for (cam, _rule), targets in self.routes.items():
            if cam == camera_id:
                for lg, _role in targets:
                    self.books[lg].cameras[camera_id] = conf

    def heard(self, camera_id: str, t: float) -> None:
        """The camera analysed a frame at `t` (a count rule that saw nobody cross is still alive)."""
        for (cam, _rule), targets in self.routes.items():
            if cam == camera_id:
                for lg, role in targets:
                    if role == "count":
                        self.books[lg].count_t = t

    def measures(self, now: float) -> dict[str, LaneMeasure]:
        out = {}
        for lg, b in self.books.items():
            while b.arrivals and b.arrivals[0] < now - FLOW_WINDOW_S:
                b.arrivals.popleft()
            window = min(FLOW_WINDOW_S, now - self.t0)
            flow = len(b.arrivals) * 3600.0 / window if window >= MIN_FLOW_WINDOW_S else None
            seen = [x for x in (b.queue_t, b.count_t) if x is not None]
            out[lg] = LaneMeasure(
                t=max(seen) if seen else self.t0 - 1e9,
                queue=b.queue,
                flow_vph=flow,
                last_arrival=b.last_arrival,
                downstream=b.downstream,
                confidence=b.trust(),
            )
        return out

    def stale(
        self, now: float, measures: Mapping[str, LaneMeasure], after_s: float, min_confidence: float
    ) -> list[str]:
        """Lane groups (with a camera rule) whose data is older than `after_s` or not confident enough."""
        out = []
        for lg, spec in self.lanes.items():
            if spec.queue is None and spec.count is None:
                continue
            m = measures[lg]
            if now - m.t > after_s or m.confidence < min_confidence:
                out.append(lg)
        return out
