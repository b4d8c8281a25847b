"""One junction under control: measures in, the controller's wish, the fall-back to the fixed
plan (stale or unsure camera data, or an operator's order), the safety layer, and what the
operator sees (current phase, queues, estimated delay, mode, recommendation). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.core.events import CameraHealth, RuleEvent

from .config import Mode, SignalJunction
from .controllers import Controller, ControlView, FixedTime, LaneMeasure, build_controller
from .measures import MeasureBook
from .safety import SafetyLayer, SignalFrame


@dataclass(frozen=True, slots=True)
class Decision:
    """One control step of one junction."""

    frame: SignalFrame  # the aspects the safety layer commands (applied in active mode)
    controller: str  # the controller that made the wish: its name, or "fixed" in fall-back
    fallback: str | None  # why the fixed plan runs instead of the configured controller
    stale: tuple[str, ...]  # lane groups without fresh, confident data
    measures: dict[str, LaneMeasure]

    @property
    def recommendation(self) -> str:
        return self.frame.target


class JunctionRuntime:
    """Controller + fall-back + safety layer for one junction."""

    def __init__(
        self, j: SignalJunction, t0: float, *, stale_after_s: float, min_confidence: float, retime_s: float
    ) -> None:
        self.j = j
        self.layer = SafetyLayer(j, t0)
        self.fixed = FixedTime(j)
        built = build_controller(j, j.controller)
        # a fixed-time junction runs the plan that is retimed from the measured flows
        self.adaptive: Controller = self.fixed if isinstance(built, FixedTime) else built
        self.book = MeasureBook(j.lane_groups, t0)
        self.mode: Mode = j.mode
        self.forced_fixed = False
        self.stale_after_s = stale_after_s
        self.min_confidence = min_confidence
        self.retime_s = retime_s
        self.next_retime = t0 + retime_s
        self.last: Decision | None = None
        self.request: str | None = None

    def on_event(self, ev: RuleEvent) -> None:
        self.book.on_event(ev)

    def on_health(self, h: CameraHealth) -> None:
        self.book.camera_health(h.camera_id, h.state.value)

    def tick(self, now: float) -> Decision:
        measures = self.book.measures(now)
        stale = self.book.stale(now, measures, self.stale_after_s, self.min_confidence)
        if now >= self.next_retime:
            flows = {k: m.flow_vph for k, m in measures.items() if m.flow_vph is not None and k not in stale}
            if flows:
                self.fixed.retime(flows)
            self.next_retime = now + self.retime_s
        fallback = (
            "forced by an operator"
            if self.forced_fixed
            else (f"stale or unsure camera data: {', '.join(stale)}" if stale else None)
        )
        ctl: Controller = self.fixed if fallback else self.adaptive
        frame = self.layer.step(now, self.request)
        fresh = {k: m for k, m in measures.items() if k not in stale}
        self.request = ctl.decide(ControlView(t=now, frame=frame, measures=fresh))
        frame = self.layer.step(now, self.request)
        self.last = Decision(frame, ctl.name, fallback, tuple(stale), measures)
        return self.last

    def estimated_delay_s(self, measures: dict[str, LaneMeasure]) -> float:
        """Mean wait per arriving vehicle now: Little's law, queued vehicles over the arrival rate
        (per approach with a measured flow; 0 where nobody waits)."""
        waits = []
        for m in measures.values():
            if m.flow_vph and m.flow_vph > 0:
                waits.append(m.queue / (m.flow_vph / 3600.0))
        return round(sum(waits) / len(waits), 1) if waits else 0.0
