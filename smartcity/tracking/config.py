"""Settings of the multi-object tracker (one model, validated, no I/O)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """Thresholds of the ByteTrack-style tracker. Scores are detector confidences in [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        0.5,
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
        0.6,
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
        description="Consecutive matched frames before a new track is confirmed (a miss before that ends it).",
        ge=1,
        le=1000,
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
