"""The contract between the road-traffic simulator (bench/roadsim) and the benches that score
trackers and rules on it (bench/counting.py, later bench/signals.py).

A `SceneRun` is one scene filmed at one analysis frame rate with one noise level and seed:
the noisy detections a detector would have produced (what the tracker sees), the rules drawn
on that camera (the same dicts as a rules file), and the ground truth derived from the true
vehicle trajectories (never from the noisy boxes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from smartcity.sources.detlog import FrameRecord

NoiseLevel = Literal["clean", "realistic", "hard"]


@dataclass(frozen=True, slots=True)
class TrueCrossing:
    """A true crossing of a counting line by the true bottom-centre point of an object."""

    rule_id: str
    object_id: str  # simulator's vehicle / person id (never given to the tracker)
    object_class: str  # true class: car, truck, bus, motorcycle, bicycle, person
    direction: str  # the rule's in_name or out_name
    t: float  # time of the crossing (s, same clock as FrameRecord.t)
    # added by roadsim, for breaking errors down (defaults keep older constructors valid):
    speed_kmh: float = 0.0  # true speed at the crossing
    box_height_px: float = 0.0  # height of the true 2D box at the crossing (size in the picture)


@dataclass(frozen=True, slots=True)
class TrueEpisode:
    """A true episode a rule should alert on: a wrong-way passage through a rule's zone, or a
    stop inside a dwell zone longer than the rule's threshold. `t_alert` is the earliest time a
    perfect rule could alert (entering against the direction + min distance, or stop start +
    threshold); `t_end` when the episode ends (left the zone)."""

    rule_id: str
    object_id: str
    object_class: str
    t_start: float
    t_alert: float
    t_end: float


@dataclass(slots=True)
class Truth:
    crossings: list[TrueCrossing] = field(default_factory=list)
    wrong_way: list[TrueEpisode] = field(default_factory=list)
    dwell: list[TrueEpisode] = field(default_factory=list)
    objects: int = 0  # distinct objects visible in the picture at some analysed frame


@dataclass(slots=True)
class SceneRun:
    scene: str  # e.g. "junction", "two_way_parking", "one_way_contraflow", "ped_crossing"
    camera_id: str
    width: int
    height: int
    fps: float  # analysis frame rate: 5 or 10
    noise: NoiseLevel
    seed: int
    duration_s: float
    rules: list[dict[str, Any]]  # RuleSpec dicts (as in a rules YAML file), camera_id == self.camera_id
    frames: list[FrameRecord]  # noisy detections, one record per analysed frame, in time order
    truth: Truth
    meta: dict[str, Any] = field(default_factory=dict)  # camera height/tilt, vehicles, noise figures
