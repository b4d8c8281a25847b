"""The scenario generator (noise, ground truth) and the engine on it through the real tracker."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scenario import STOP_X, generate, signal_at

from smartcity.analytics import RuleEngine
from smartcity.analytics.signal import classify_signal
from smartcity.core.vision import FrameTracks
from smartcity.tracking import ByteTracker, TrackerConfig


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return generate(seed=3, duration_s=300.0, fps=10.0)


def test_generator_is_deterministic_and_noisy(scene) -> None:  # type: ignore[no-untyped-def]
    again = generate(seed=3, duration_s=300.0, fps=10.0)
    assert again.frames[500] == scene.frames[500] and again.gt_events == scene.gt_events
    assert len(scene.frames) == 3000
    # about 10% of visible objects are missed: compare detections of true objects to visible ones
    visible = detected = 0
    for k in range(0, 3000, 7):
        t, dets = scene.frames[k]
        for o in scene.objects:
            if o.t0 <= t <= o.t1 and not any(a <= t < e for a, e in o.gaps):
                x, y = o.at(t)
                if 0.0 <= x <= 1.0:
                    visible += 1
                    detected += any(
                        abs((d.box[0] + d.box[2]) / 2 / scene.width - x) < 0.01 and abs(d.box[3] / scene.height - y) < 0.01
                        and d.cls == o.cls for d in dets)
    assert 0.80 < detected / visible < 0.95
    kinds = Counter(e.kind for e in scene.gt_events)
    assert kinds["wrong_way"] >= 4 and kinds["red_light"] >= 5 and kinds["dwell"] >= 3 and kinds["abandoned"] >= 2
    # every red-light truth is a forward crossing of the stop line during red
    for e in scene.gt_events:
        if e.kind == "red_light":
            assert signal_at(e.t) == "red" and abs(e.x - STOP_X) < 0.03


def test_signal_image_is_classified(scene) -> None:  # type: ignore[no-untyped-def]
    roi = scene.rules[2].params["signal"]["roi"]
    for t in np.arange(0.0, 60.0, 0.7):
        assert classify_signal(scene.image_at(float(t)), roi) == signal_at(float(t))
    assert classify_signal(np.full((72, 128, 3), 40, dtype=np.uint8), roi) is None


def test_engine_through_the_tracker_on_the_scene(scene) -> None:  # type: ignore[no-untyped-def]
    tracker = ByteTracker(TrackerConfig())
    engine = RuleEngine(scene.rules, scene.camera_id)
    events = []
    for t, dets in scene.frames:
        ft = FrameTracks(scene.camera_id, t, scene.width, scene.height, tuple(tracker.update(dets, t)))
        events += engine.update(ft, scene.image_at(t))
    counted: Counter[tuple[str, str]] = Counter()
    for b in engine.count_buckets():
        counted[(b.object_class, b.direction)] += b.n
    for key, n in scene.gt_counts.items():
        assert abs(counted[key] - n) <= max(1, math.ceil(0.05 * n)), (key, counted[key], n)
    for kind in ("wrong_way", "red_light", "dwell", "abandoned"):
        truth = [e for e in scene.gt_events if e.kind == kind]
        found = [e for e in events if e.kind == kind]
        assert abs(len(found) - len(truth)) <= 1, (kind, len(found), len(truth))
    onsets = [e for e in events if e.kind == "dwell"]
    truth = sorted(e.t for e in scene.gt_events if e.kind == "dwell")
    for e in onsets:
        assert min(abs(e.t - g) for g in truth) < 2.0
