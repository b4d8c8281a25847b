"""Builders of rule specs and frames of tracks for the analytics tests."""

from __future__ import annotations

from typing import Any

from smartcity.analytics import RuleSpec, validate_rule
from smartcity.core.vision import FrameTracks, Track

W, H = 1000, 1000
CAM = "cam1"


def spec(rule_type: str, params: dict[str, Any], **kw: Any) -> RuleSpec:
    data: dict[str, Any] = {"id": kw.pop("id", f"r-{rule_type}"), "camera_id": CAM, "type": rule_type,
                            "params": params}
    data.update(kw)
    return validate_rule(data)


def track(tid: int, x: float, y: float, cls: str = "car", *, size: float = 0.04, score: float = 0.9,
          hits: int = 10, confirmed: bool = True, tsu: int = 0, t: float = 0.0) -> Track:
    """A track whose ground point is at normalised (x, y)."""
    return Track(track_id=tid, cls=cls, box=((x - size / 2) * W, (y - size) * H, (x + size / 2) * W, y * H),
                 score=score, t=t, hits=hits, confirmed=confirmed, time_since_update=tsu)


def frame(t: float, *tracks: Track) -> FrameTracks:
    return FrameTracks(camera_id=CAM, t=t, width=W, height=H, tracks=tuple(tracks))
