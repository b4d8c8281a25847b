"""Configuration of privacy: what viewers see by default, the private mask (how it is made and
how wide its margins are) and the background model behind it. Pure pydantic, no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ViewMode = Literal["pixelated", "background"]
"""What a viewer sees of a camera: `pixelated` (the picture, its private mask pixelated) or
`background` (the learned empty scene, what moves drawn as blurred blobs)."""

VIEW_MODES: tuple[ViewMode, ...] = ("pixelated", "background")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BackgroundConfig(_Section):
    """The per-camera background model (running mean and variance on a low-resolution grid)."""

    grid_width: int = Field(
        256,
        description="Width of the model's grid, cells (the frame is block-averaged to about this).",
        ge=32,
        le=1920,
    )
    learning_rate: float = Field(
        0.02, description="Share of a new frame blended into the background per analysed frame.", gt=0, le=0.5
    )
    warmup_frames: int = Field(
        10,
        description="Frames learned before the foreground is trusted; until then the picture is fully hidden.",
        ge=2,
        le=10_000,
    )
    min_diff: float = Field(
        25.0, description="Least grey-level difference that counts as moving.", ge=1, le=255
    )
    sigmas: float = Field(
        3.0, description="Standard deviations of a cell's noise that count as moving.", ge=0.5, le=20
    )
    min_std: float = Field(
        3.0, description="Least noise standard deviation assumed per cell, grey levels.", ge=0.1, le=100
    )
    max_foreground_fraction: float = Field(
        0.6,
        description="Share of the picture moving at once above which the scene is learned again "
        "(lights, camera moved); the picture is fully hidden meanwhile.",
        gt=0,
        le=1,
    )


class MaskConfig(_Section):
    """The fail-closed private mask: person boxes, tracks' predicted boxes, foreground, keypoint
    hulls, each grown by a margin that widens with uncertainty."""

    box_margin: float = Field(
        0.5,
        description="Margin added around a person box on every side, share of its size (0.5: the previous "
        "method's, so the mask always holds what it hid).",
        ge=0,
        le=3,
    )
    low_score_margin: float = Field(
        0.25, description="Extra margin for a box of score 0 (scaled by 1 - score).", ge=0, le=3
    )
    stale_margin_per_s: float = Field(
        0.5,
        description="Extra margin per second since the detector last saw the object (tracks coasting, "
        "frames the motion gate spared the detector), share of the box's size.",
        ge=0,
        le=10,
    )
    max_margin: float = Field(1.5, description="Largest margin, share of the box's size.", ge=0, le=5)
    foreground_margin_px: int = Field(
        16,
        description="Foreground regions grow by this many pixels of the frame on every side.",
        ge=0,
        le=200,
    )
    foreground_min_cells: int = Field(
        2,
        description="Foreground regions smaller than this many grid cells are noise and dropped.",
        ge=1,
        le=1000,
    )
    foreground_box: bool = Field(
        True,
        description="Mask each foreground region's whole bounding box (a walker's still head with "
        "their moving legs), not only the cells that moved.",
    )
    spare_vehicles: bool = Field(
        True,
        description="Foreground inside a confident vehicle box (score >= 0.5) and no person box is "
        "not masked: traffic stays visible; people are still masked by their own boxes.",
    )
    keypoint_score: float = Field(0.3, description="Least keypoint score taken into a pose hull.", ge=0, le=1)
    detector_timeout_s: float = Field(
        5.0,
        description="Seconds without a detector answer after which the mask is not trusted "
        "(model down): the picture is fully hidden.",
        gt=0,
        le=3600,
    )
    pixel_block: int = Field(
        0,
        description="Block size of the pixelation outside person boxes, pixels; 0: 1/40 of the picture's "
        "smaller side, 8 at least.",
        ge=0,
        le=256,
    )


DEFAULT_CLIP_KINDS = ("fall", "person_down", "fire", "smoke")


class ClipConfig(_Section):
    """Evidence clips: seconds before and after an incident's event, pixelated like the stills.
    Each camera with a rule of these kinds keeps its recent frames (downscaled, JPEG) in a ring
    bounded by time and by bytes."""

    enabled: bool = Field(True, description="Record a clip for the events of `kinds` that get a still.")
    kinds: tuple[str, ...] = Field(
        DEFAULT_CLIP_KINDS, description="Event kinds that get a clip.", max_length=32
    )
    before_s: float = Field(5.0, description="Seconds of video before the event.", ge=0, le=30)
    after_s: float = Field(5.0, description="Seconds of video after the event.", ge=0, le=30)
    fps: float = Field(5.0, description="Frames per second kept (at most the analysed rate).", gt=0, le=15)
    width: int = Field(320, description="Width of the clip, pixels (height kept in proportion).", ge=64, le=1280)
    quality: int = Field(6, description="JPEG qscale of the frames kept, 2 (best) .. 31.", ge=2, le=31)
    max_ring_bytes: int = Field(
        8 << 20, description="Bytes of frames a camera keeps at most (oldest dropped first).", ge=64 << 10, le=256 << 20
    )
    max_pending: int = Field(
        4, description="Clips a camera records at once (more are skipped and counted).", ge=1, le=16
    )


class PrivacyConfig(_Section):
    """Privacy: what viewers see by default, and how the private mask is made."""

    default_view: ViewMode = Field(
        "pixelated",
        description="What viewers see of a camera without its own setting: pixelated (people "
        "and everything that moves pixelated) or background (the learned empty scene, moving things as "
        "blurred blobs). Admins may ask for the clear picture; privacy zones stay masked in every view.",
    )
    mask: MaskConfig = Field(default_factory=MaskConfig, description="The private mask.")
    background: BackgroundConfig = Field(
        default_factory=BackgroundConfig, description="The background model."
    )
    evidence_clip: ClipConfig = Field(default_factory=ClipConfig, description="Evidence clips of incidents.")


MAX_ZONES = 32
MAX_ZONE_POINTS = 64
ZonePoint = tuple[float, float]


class CameraPrivacySettings(_Section):
    """One camera's privacy settings as an admin sets them (GraphQL `setCameraPrivacy`)."""

    zones: list[list[ZonePoint]] = Field(
        default_factory=list,
        description="Privacy-mask zones: polygons of 3 to 64 [x, y] points in normalised image coordinates "
        "(0..1), filled solid in every picture that leaves the camera, the admin's clear view included.",
        max_length=MAX_ZONES,
    )
    view_mode: ViewMode | None = Field(None, description="What viewers see; null: privacy.default_view.")

    @field_validator("zones")
    @classmethod
    def _polygons(cls, v: list[list[ZonePoint]]) -> list[list[ZonePoint]]:
        for i, poly in enumerate(v):
            if not 3 <= len(poly) <= MAX_ZONE_POINTS:
                raise ValueError(f"zone {i}: a polygon needs 3 to {MAX_ZONE_POINTS} points, got {len(poly)}")
            for x, y in poly:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(f"zone {i}: point ({x}, {y}) is outside the picture (0..1)")
        return v
