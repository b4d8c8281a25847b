"""Settings of the multi-object tracker (one model, validated, no I/O)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """Thresholds of the ByteTrack-style tracker. Scores are detector confidences in [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        0.4,
        description="Detections at or above this score are matched first, against every live track.",
        ge=0.0,
        le=1.0,
    )
    low_score: float = Field(
        0.1,
        description=(
            "Detections in [low_score, high_score) only extend tracks that were seen on the previous "
            "frame; below low_score they are ignored."
        ),
        ge=0.0,
        le=1.0,
    )
    new_track_score: float = Field(
        0.45,
        description="An unmatched detection starts a new track only at or above this score.",
        ge=0.0,
        le=1.0,
    )
    match_iou: float = Field(
        0.3,
        description="Minimum IoU between a track's predicted box and a detection for them to match.",
        gt=0.0,
        le=1.0,
    )
    min_hits: int = Field(
        3,
        description=(
            "Matched frames before a new track is confirmed; a track seen once that misses more than "
            "`tentative_max_age` frames in a row ends."
        ),
        ge=1,
        le=1000,
    )
    velocity_noise: float = Field(
        0.05,
        description=(
            "How much a track's velocity may change per analysed frame, in box sizes (the Kalman "
            "filter's process noise). ByteTrack's 1/160 suits 30 fps; between frames analysed at 5 fps "
            "a vehicle approaching the camera speeds up in the picture, and a filter that trusts its "
            "old velocity lags behind it."
        ),
        gt=0.0,
        le=1.0,
    )
    tentative_max_age: int = Field(
        1,
        description=(
            "Frames in a row a track seen once may miss before it ends: a detector missing one frame in "
            "ten must not split every young track. A track seen twice has a velocity and waits `max_age` "
            "frames, as a confirmed one does (a detector's gaps last several frames)."
        ),
        ge=0,
        le=100,
    )
    match_distance: float = Field(
        0.6,
        description=(
            "Gate for pairs that overlap too little: largest distance between a moving track's predicted "
            "centre and a detection's centre, in box sizes (scaled by the frames since its last match)."
        ),
        gt=0.0,
        le=5.0,
    )
    still_distance: float = Field(
        0.3,
        description=(
            "The same gate for a still track (parked, queued): it does not widen while the track is lost, "
            "and is tighter than `match_distance` because the vehicle queued behind stands about half a "
            "box away."
        ),
        gt=0.0,
        le=5.0,
    )
    new_track_distance: float = Field(
        1.2,
        description=(
            "The same gate for a track seen once, whose velocity is not known yet: how far an object may "
            "move per frame, in box sizes (a car at 50 km/h filmed at 5 fps moves about 0.6 of its length)."
        ),
        gt=0.0,
        le=5.0,
    )
    max_size_ratio: float = Field(
        1.8,
        description="Largest ratio between a track's predicted width (or height) and a detection's for a "
        "distance-gated match.",
        gt=1.0,
        le=10.0,
    )
    duplicate_overlap: float = Field(
        0.8,
        description=(
            "A car, truck or bus box lying at least this much (share of its area) inside the box of a "
            "`duplicate_classes` vehicle matched or started in the same frame, standing on the same ground "
            "and ending on the same side, starts no track: detectors box a bus twice (whole and rear)."
        ),
        gt=0.0,
        le=1.0,
    )
    duplicate_classes: tuple[str, ...] = Field(
        ("truck", "bus"),
        description="Large vehicles whose parts a detector also boxes (see duplicate_overlap); empty: off.",
        max_length=64,
    )
    class_groups: tuple[tuple[str, ...], ...] = Field(
        (("car", "truck", "bus"), ("motorcycle", "bicycle"), ("person",)),
        description=(
            "Classes a detector confuses with each other: a track matches detections of its own group only "
            "(its class is the vote over its detections), and a class in no group matches any track. Within "
            "a group association ignores the class (detectors flicker between car and truck); across groups a "
            "car whose box was missed took the box of the bicycle queued beside it and lost its own way. "
            "Empty: association ignores classes altogether."
        ),
        max_length=64,
    )
    max_age: int = Field(
        30,
        description="Frames a confirmed track survives without a match before it is dropped.",
        ge=0,
        le=100_000,
    )

    @model_validator(mode="after")
    def _ordered_scores(self) -> TrackerConfig:
        if self.low_score > self.high_score:
            raise ValueError(f"low_score ({self.low_score}) must not exceed high_score ({self.high_score})")
        if self.new_track_score < self.high_score:
            raise ValueError(
                f"new_track_score ({self.new_track_score}) must be at least high_score ({self.high_score})"
            )
        return self

    @model_validator(mode="after")
    def _disjoint_groups(self) -> TrackerConfig:
        seen: set[str] = set()
        for group in self.class_groups:
            twice = seen.intersection(group)
            if twice:
                raise ValueError(f"class_groups: {sorted(twice)} in more than one group")
            seen.update(group)
        return self
