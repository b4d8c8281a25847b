"""occupancy: a crowd gauge, how many selected objects are in a zone, with events on thresholds."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from smartcity.analytics import kernels
from smartcity.analytics.base import ClassVocab, FrameView, Rule
from smartcity.analytics.classes import PEOPLE
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity

_ANYWHERE = np.zeros(0, dtype=bool)  # count_selected: no zone


class OccupancyParams(Params):
    zone: PolygonParam = Field(description="Zone where objects are counted (normalised polygon).")
    thresholds: list[int] = Field(default_factory=list, description="Levels that raise an event when reached.",
                                  max_length=20)
    hysteresis: int = Field(1, description="The count must fall this far below a level to clear it.", ge=0,
                            le=10_000)
    hold_s: float = Field(2.0, description="Seconds a level must hold before its event.", ge=0, le=3600)
    sample_interval_s: float = Field(60.0, description="Seconds between occupancy samples; 0 = none.", ge=0,
                                     le=86400)

    @field_validator("thresholds")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("thresholds must be positive counts")
        if len(set(v)) != len(v):
            raise ValueError("thresholds must be distinct")
        return sorted(v)


@register_rule("occupancy")
class OccupancyRule(Rule):
    """Crowd gauge: how many selected objects are in a zone, with events on thresholds."""

    Params = OccupancyParams
    default_classes = PEOPLE
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"occupancy_above"})
    renders_evidence = False  # its samples are statistics (a threshold event still gets a snapshot)
    colour = "#facc15"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: OccupancyParams = self.params
        self.zone = Polygon.of(p.zone)
        self.above = [False] * len(p.thresholds)
        self.pending: list[float | None] = [None] * len(p.thresholds)
        self.count = 0
        self._sample: list[int] = []
        self._sample_start: float | None = None

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: OccupancyParams = self.params
        table = self.class_table(self.classes)
        # the zone is asked about only when someone is selected (as it always was: the zones asked
        # about in a frame are those the slot table tests together in the next)
        args = (table, view.codes, view.conf, self.spec.min_confidence, view.confirmed)
        n = kernels.count_selected(*args, view.inside(self.zone)) if kernels.count_selected(*args, _ANYWHERE) else 0
        self.count = n
        t = view.t
        out: list[RuleEvent] = []
        for j, level in enumerate(p.thresholds):
            want = (n >= level) if not self.above[j] else not (n <= level - max(p.hysteresis, 1))
            if want == self.above[j]:
                self.pending[j] = None
                continue
            if self.pending[j] is None:
                self.pending[j] = t
            since = self.pending[j]
            assert since is not None
            if t - since >= p.hold_s:
                self.above[j] = want
                self.pending[j] = None
                kind = "occupancy_above" if want else "occupancy_below"
                self.emit(out, view, t, kind, payload={"level": level, "count": n})
        if p.sample_interval_s > 0:
            if self._sample_start is None:
                self._sample_start = t
            self._sample.append(n)
            if t - self._sample_start >= p.sample_interval_s:
                vals = self._sample
                self.emit(out, view, t, "occupancy_sample", severity=Severity.INFO,
                          payload={"mean": round(sum(vals) / len(vals), 3), "max": max(vals), "min": min(vals),
                                   "frames": len(vals), "from": self._sample_start, "to": t})
                self._sample, self._sample_start = [], t
        return out

    def reset(self) -> None:
        self.above = [False] * len(self.params.thresholds)
        self.pending = [None] * len(self.params.thresholds)
        self._sample, self._sample_start = [], None
