"""line_count: crossings of a line by class and direction, in 1-minute buckets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from smartcity.analytics.base import ClassVocab, FrameView, Rule
from smartcity.analytics.classes import ROAD_USERS
from smartcity.analytics.counts import CountAggregator
from smartcity.analytics.geometry import Line
from smartcity.analytics.params import DirectionParam, LineParam, Params
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._crossing import Crossings, check_across, on_line
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class LineCountParams(Params):
    line: LineParam = Field(description="Counting line [[x, y], [x, y]] (normalised).")
    in_direction: DirectionParam | Literal["left", "right"] = Field(
        description="Direction counted as 'in': a vector [dx, dy] across the line, or 'left'/'right' of a->b."
    )
    min_track_age: int = Field(2, description="Frames a track must be detected before it counts.", ge=1, le=100)
    hysteresis: float = Field(
        0.01, description="Distance past the line (normalised) before a side change is believed.", ge=0, le=0.2
    )
    hysteresis_box: float = Field(
        0.1,
        description="The band also spans this share of the box's extent across the line (box edges jitter "
        "by a few percent of the box: a vehicle waiting on the line must not count in and out).",
        ge=0,
        le=1,
    )
    margin: float = Field(
        0.0,
        description="Extension of the line beyond its ends (fraction of its length). Off by default: where a box's "
        "ground point meets the line is as noisy one way as the other, so a margin only adds what passes beside the "
        "line's ends (walkers on the pavement at the kerb).",
        ge=0,
        le=0.5,
    )
    hidden_s: float = Field(
        2.0,
        description="A track lost behind objects detected nearer the camera whose predicted path crosses the line "
        "within this many seconds of its last sighting counts as crossing (unless it comes out on its own side); "
        "0: only crossings seen count. A low camera looks along the road: a vehicle that has just entered the "
        "picture is covered by the one behind it, one leaving passes behind the queue on the other side.",
        ge=0,
        le=5,
    )
    hidden_covered: float = Field(
        0.5, description="Share of the lost track's predicted box the nearer objects must cover.", gt=0, le=1
    )
    emit_events: bool = Field(False, description="Also emit one event per crossing (counts are always kept).")
    in_name: str = Field("in", description="Name of the 'in' direction in counts.", min_length=1, max_length=32)
    out_name: str = Field("out", description="Name of the 'out' direction in counts.", min_length=1, max_length=32)

    @field_validator("in_direction")
    @classmethod
    def _across(cls, v: Any, info: ValidationInfo) -> Any:
        return check_across(v, info, "line")


@register_rule("line_count")
class LineCountRule(Rule):
    """Counts crossings of a line by class and direction, in 1-minute buckets."""

    Params = LineCountParams
    default_classes = ROAD_USERS
    severity = Severity.INFO
    alert_kinds = frozenset({"crossing"})
    produces_counts = True
    renders_evidence = False  # a crossing is a statistic, not a register entry
    colour = "#38bdf8"

    def __init__(
        self, spec: RuleSpec, vocab: ClassVocab | None = None, *, counts: CountAggregator | None = None
    ) -> None:
        super().__init__(spec, vocab, counts=counts)
        p: LineCountParams = self.params
        self.line = Line.of(p.line, p.in_direction)
        self.crossings = Crossings(self.line, p.hysteresis, p.margin, p.min_track_age, p.hysteresis_box,
                                   p.hidden_s, p.hidden_covered)

    def step(self, view: FrameView) -> list[RuleEvent]:
        out: list[RuleEvent] = []
        crossings = self.crossings
        seen = crossings.step(view, self.selected(view), self.own_table(), self.spec.min_confidence)
        for i, direction, t_cross, u in seen:
            tr = view.tracks[i]
            self._count(out, view, direction, t_cross, u, tr.track_id, tr.cls, {})
        for direction, t_cross, u, track_id, code in crossings.released:
            self._count(out, view, direction, t_cross, u, track_id, self.vocab.names[code], {"hidden": True})
        return out

    def _count(self, out: list[RuleEvent], view: FrameView, direction: int, t_cross: float, u: float,
               track_id: int, cls: str, extra: dict[str, Any]) -> None:
        p: LineCountParams = self.params
        name = p.in_name if direction > 0 else p.out_name
        self.counts.add(self.spec.id, cls, name, t_cross)
        if p.emit_events:
            self.emit(out, view, t_cross, "crossing", track_id=track_id, object_class=cls,
                      payload=on_line(self.line, u, direction=name, along=round(u, 3), **extra))

    def reset(self) -> None:
        self.crossings.reset()
