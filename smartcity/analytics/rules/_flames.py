"""Machinery of the `fire` and `smoke` rules: their parameters, and one episode per rule (one
alert when fire or smoke is first seen, then silence until it has been gone for `rearm_s`).

Evidence comes from the classical detector on the pixels (smartcity.analytics.fire), from a
city's own fire/smoke model (any detector of the camera whose class map, e.g. a `names_file`,
names `fire` or `smoke`: tracks of the rule's classes), or from both. Boxes of people and
vehicles the camera's detector found are masked out of the classical detector.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from smartcity.analytics.base import ClassVocab, FrameView, Rule
from smartcity.analytics.classes import ROAD_USERS
from smartcity.analytics.fire import FireSmokeDetector, Observation, Region
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import ClassNames, Params, PolygonParam
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class FlameParams(Params):
    zone: PolygonParam | None = Field(
        None, description="Zone watched (normalised polygon); none = whole image."
    )
    source: Literal["classical", "model", "both"] = Field(
        "classical",
        description="classical: the pixel detector; model: tracks of the rule's classes from the camera's "
        "detector (a city's own ONNX fire/smoke model, classes from its names file); both: either.",
    )
    window_s: float = Field(2.0, description="Seconds over which a region must persist.", ge=0.5, le=60)
    persistence: float = Field(
        0.5, description="Share of the window a grid cell must show the cue.", ge=0.1, le=1.0
    )
    analysis_fps: float = Field(5.0, description="Analysed frames per second of the camera.", gt=0, le=60)
    mask_classes: ClassNames = Field(
        default_factory=lambda: list(ROAD_USERS),
        description="Detected objects whose boxes the classical detector ignores (a red coat, a brake light).",
    )
    mask_min_score: float = Field(
        0.25,
        description="Boxes of `mask_classes` the detector found at this score or more are masked out too, "
        "tracked or not (a yellow bus in low sun scores under the tracker's new-track threshold).",
        ge=0.0,
        le=1.0,
    )
    mask_hold_s: float = Field(
        1.5,
        description="Seconds the weak boxes of a detector run stay masked (a hard object, such as a bus in low "
        "sun, is found in one run and missed in the next).",
        ge=0.0,
        le=10.0,
    )
    model_min_hits: int = Field(3, description="model: detections of a track before it alerts.", ge=1, le=100)
    rearm_s: float = Field(
        120.0, description="Seconds without fire or smoke before a new alert can fire.", gt=0, le=86400
    )


class FlameRule(Rule):
    """Base of `fire` and `smoke`: `cue` picks the detector's output this rule reports."""

    Params = FlameParams
    severity = Severity.CRITICAL
    renders_evidence = True
    reads_pixels = True
    cue: ClassVar[Literal["fire", "smoke"]]

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: FlameParams = self.params
        self.zone = Polygon.of(p.zone) if p.zone is not None else None
        self.masked = frozenset(p.mask_classes)
        self._fresh()

    def _fresh(self) -> None:
        p: FlameParams = self.params
        self.detector: FireSmokeDetector | None = None
        if p.source != "model":
            self.detector = FireSmokeDetector(
                fps=p.analysis_fps,
                fire_window_s=p.window_s,
                smoke_window_s=p.window_s * 1.5,
                fire_persistence=p.persistence,
                smoke_persistence=p.persistence,
                fire=self.cue == "fire",
                smoke=self.cue == "smoke",
            )
        self.last_seen = -np.inf
        # the detector runs of the last `mask_hold_s` seconds: (t, boxes masked); at most one a frame
        self.weak: deque[tuple[float, list[tuple[float, float, float, float]]]] = deque(
            maxlen=max(1, round(p.mask_hold_s * p.analysis_fps) + 1)
        )
        self.active = False
        self.last: Observation | None = None

    def reset(self) -> None:
        self._fresh()

    def _classical(self, view: FrameView) -> Region | None:
        if self.detector is None or view.image is None:
            return None
        masked = self.class_table(self.masked)[view.codes] if view.n else np.zeros(0, dtype=bool)
        boxes = [
            (tr.box[0] / view.width, tr.box[1] / view.height, tr.box[2] / view.width, tr.box[3] / view.height)
            for tr, m in zip(view.tracks, masked, strict=True)
            if m
        ]
        boxes += self._weak_boxes(view)
        self.last = obs = self.detector.update(view.image, view.t, boxes)
        region = obs.fire if self.cue == "fire" else obs.smoke
        if region is not None and self.zone is not None:
            cx, cy = (region.x1 + region.x2) / 2, (region.y1 + region.y2) / 2
            if not self.zone.contains_xy(np.array([[cx], [cy]]))[0]:
                return None
        return region

    def _weak_boxes(self, view: FrameView) -> list[tuple[float, float, float, float]]:
        """The detector's boxes of masked classes down to `mask_min_score` (the tracker starts tracks
        only from stronger ones), from its runs of the last `mask_hold_s` seconds."""
        p: FlameParams = self.params
        if view.detections is not None:
            w, h = float(view.width or 1), float(view.height or 1)
            boxes = [
                (d.box[0] / w, d.box[1] / h, d.box[2] / w, d.box[3] / h)
                for d in view.detections
                if d.score >= p.mask_min_score and d.cls in self.masked
            ]
            self.weak.append((view.t, boxes))
        while self.weak and self.weak[0][0] < view.t - p.mask_hold_s:
            self.weak.popleft()
        return [b for _, boxes in self.weak for b in boxes]

    def _model(self, view: FrameView) -> Region | None:
        p: FlameParams = self.params
        if p.source == "classical" or not view.n:
            return None
        sel = self.selected(view) & (view.hits >= p.model_min_hits)
        if self.zone is not None:
            sel &= view.inside(self.zone)
        idx = np.nonzero(sel)[0]
        if not len(idx):
            return None
        b = np.array([view.tracks[i].box for i in idx], dtype=np.float64)
        return Region(
            float(b[:, 0].min()) / view.width,
            float(b[:, 1].min()) / view.height,
            float(b[:, 2].max()) / view.width,
            float(b[:, 3].max()) / view.height,
            len(idx),
        )

    def step(self, view: FrameView) -> list[RuleEvent]:
        region = self._classical(view)
        source = "classical"
        model_region = self._model(view)
        if region is None and model_region is not None:
            region, source = model_region, "model"
        out: list[RuleEvent] = []
        if region is None:
            if self.active and view.t - self.last_seen >= self.params.rearm_s:
                self.active = False
            return out
        self.last_seen = view.t
        if not self.active:
            self.active = True
            payload: dict[str, Any] = {
                "box": [round(region.x1, 4), round(region.y1, 4), round(region.x2, 4), round(region.y2, 4)],
                "cells": region.cells,
                "source": source,
            }
            self.emit(out, view, view.t, self.cue, payload=payload)
        return out
