"""red_light: a vehicle crossing the stop line forwards while the signal is red.

The signal state comes from the picture (the lit lamp in a region over the signal head) or is
pushed from outside (a traffic controller, through the API): the rule accepts signals.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from smartcity.analytics.base import ClassVocab, FrameView, Rule
from smartcity.analytics.classes import VEHICLES
from smartcity.analytics.geometry import Line
from smartcity.analytics.params import BoxParam, DirectionParam, LineParam, Params
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._crossing import Crossings, check_across, on_line
from smartcity.analytics.signal import SignalColour, classify_signal
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class SignalFromImage(Params):
    source: Literal["image"] = Field(description="Classify the colour of the lit lamp in `roi`.")
    roi: BoxParam = Field(description="Region over the signal head [x1, y1, x2, y2] (normalised).")
    stable_frames: int = Field(2, description="Frames a new colour must persist before it is believed.",
                               ge=1, le=50)


class SignalExternal(Params):
    source: Literal["external"] = Field(description="State pushed through the API (set_signal_state).")
    max_age_s: float = Field(300.0, description="A pushed state older than this is unknown.", gt=0, le=86400)


class RedLightParams(Params):
    stop_line: LineParam = Field(description="Stop line [[x, y], [x, y]] (normalised).")
    direction: DirectionParam | Literal["left", "right"] = Field(
        description="Direction of travel through the stop line: [dx, dy] or 'left'/'right' of a->b."
    )
    signal: SignalFromImage | SignalExternal = Field(discriminator="source", description="Signal state source.")
    include_amber: bool = Field(False, description="Also alert when crossing on amber.")
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)
    hysteresis: float = Field(0.01, description="Distance past the line before a side change is believed.",
                              ge=0, le=0.2)
    margin: float = Field(0.02, description="Extension of the line beyond its ends.", ge=0, le=0.5)

    @field_validator("direction")
    @classmethod
    def _across(cls, v: Any, info: ValidationInfo) -> Any:
        return check_across(v, info, "stop_line")


@register_rule("red_light")
class RedLightRule(Rule):
    """Alerts when a selected vehicle crosses the stop line (forwards) while the signal is red."""

    Params = RedLightParams
    default_classes = VEHICLES
    severity = Severity.HIGH
    alert_kinds = frozenset({"red_light"})
    accepts_signals = True
    reads_pixels = True  # a signal head's lamp (`source: image`)
    colour = "#ef4444"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: RedLightParams = self.params
        self.line = Line.of(p.stop_line, p.direction)
        self.crossings = Crossings(self.line, p.hysteresis, p.margin, p.min_track_age)
        self.state: SignalColour | None = None
        self.state_t = -math.inf
        self._candidate: SignalColour | None = None
        self._candidate_n = 0
        self._history: list[tuple[float, SignalColour | None]] = []

    @classmethod
    def takes_signals(cls, params: BaseModel) -> bool:
        return isinstance(params, RedLightParams) and isinstance(params.signal, SignalExternal)

    def set_signal(self, state: SignalColour, t: float) -> None:
        """An externally pushed signal state (ignored by an image-sourced rule)."""
        if state not in ("red", "amber", "green"):
            raise ValueError(f"signal state must be red, amber or green, got {state!r}")
        if isinstance(self.params.signal, SignalExternal):
            self._set(state, t)

    def _set(self, state: SignalColour | None, t: float) -> None:
        if state != self.state:
            self._history.append((t, state))
            del self._history[:-64]
        self.state, self.state_t = state, t

    def _state_at(self, t: float) -> SignalColour | None:
        """State at time t (a pending crossing is judged by the state when it happened)."""
        for ht, hs in reversed(self._history):
            if ht <= t:
                return hs
        return None

    def _observe(self, view: FrameView) -> None:
        sig = self.params.signal
        if isinstance(sig, SignalFromImage):
            if view.image is None:
                return
            colour = classify_signal(view.image, sig.roi)
            if colour is None:
                return
            if colour == self._candidate:
                self._candidate_n += 1
            else:
                self._candidate, self._candidate_n = colour, 1
            if self._candidate_n >= sig.stable_frames and colour != self.state:
                self._set(colour, view.t)
            elif colour == self.state:
                self.state_t = view.t
        elif view.t - self.state_t > sig.max_age_s and self.state is not None:
            self._set(None, view.t)

    def step(self, view: FrameView) -> list[RuleEvent]:
        self._observe(view)
        out: list[RuleEvent] = []
        p: RedLightParams = self.params
        for i, direction, t_cross, u in self.crossings.step(view, self.selected(view)):
            if direction <= 0:
                continue
            state = self._state_at(t_cross)
            if state == "red" or (state == "amber" and p.include_amber):
                tr = view.tracks[i]
                self.emit(out, view, t_cross, "red_light", track_id=tr.track_id, object_class=tr.cls,
                          payload=on_line(self.line, u, signal=state, along=round(u, 3)))
        return out

    def reset(self) -> None:
        self.crossings.reset()
