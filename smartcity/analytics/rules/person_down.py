"""person_down: a person lying still on the ground for N seconds, whatever brought them there.

A fall, a faint, a fit or someone lying down on purpose: the rule does not ask how the person
got down, only that they lie (`_posture`: torso near horizontal and a wide box, or a very wide
box when the torso is not seen) and stay within `still_radius` of where they lay down for
`down_s` seconds. One alert per episode; standing up or moving away starts again.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from smartcity.analytics.base import ClassVocab, FrameView, Rule, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._posture import DownEpisodes, Posture, PostureParams, read_posture
from smartcity.analytics.rules._presence import Stillness
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class PersonDownParams(PostureParams):
    zone: PolygonParam | None = Field(
        None, description="Zone watched (normalised polygon); none = whole image."
    )
    down_s: float = Field(10.0, description="Seconds lying still before the alert.", gt=0, le=86400)
    still_radius: float = Field(
        0.5,
        description="Lying still: the ground point stays within this many box widths of where the person lay "
        "down (a lying person's box jitters as limbs move).",
        gt=0,
        le=10,
    )
    grace_s: float = Field(1.0, description="Seconds of other readings bridged while down.", ge=0, le=60)


@register_rule("person_down")
class PersonDownRule(Rule):
    """A person lying still on the ground for `down_s` seconds."""

    Params = PersonDownParams
    default_classes = ("person",)
    severity = Severity.HIGH
    alert_kinds = frozenset({"person_down"})
    model_roles = frozenset({"pose"})
    colour = "#d946ef"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: PersonDownParams = self.params
        self.zone = Polygon.of(p.zone) if p.zone is not None else None
        self.down = DownEpisodes(p.grace_s)
        self.still = Stillness()

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: PersonDownParams = self.params
        self.down.sync(view)
        self.still.sync(view)
        idx = _nz(self.selected(view))
        if self.zone is not None and len(idx):
            idx = idx[view.inside(self.zone)[idx]]
        out: list[RuleEvent] = []
        lying: list[int] = []
        for i in idx.tolist():
            slot = int(view.slots[i])
            r = read_posture(view.tracks[i], p)
            if self.down.observe(slot, r.posture, view.t):
                self.still.release([slot])  # a new episode: anchored where the person lies now
            if r.posture is Posture.LYING:
                lying.append(i)
        if not lying:
            return out
        li = np.array(lying, dtype=np.intp)
        moved, still_for = self.still.update(view, li, p.still_radius * np.maximum(view.bw[li], 1e-3))
        st = self.down.st
        for k, i in enumerate(lying):
            slot = int(view.slots[i])
            if moved[k]:
                st.since[slot] = view.t  # moving on the ground is not lying still: count again
            down_for = min(self.down.down_for(slot, view.t), float(still_for[k]))
            if st.fired[slot] or down_for < p.down_s:
                continue
            st.fired[slot] = True
            tr = view.tracks[i]
            self.emit(
                out,
                view,
                view.t,
                "person_down",
                track_id=tr.track_id,
                object_class=tr.cls,
                payload=track_payload(view, i, down_s=round(down_for, 3)),
            )
        return out

    def reset(self) -> None:
        self.down.reset()
        self.still.reset()
