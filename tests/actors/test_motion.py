from __future__ import annotations

import numpy as np

from smartcity.actors.motion import GateDecision, MotionConfig, MotionGate


def scene(box_x: int | None) -> np.ndarray:
    img = np.full((240, 320, 3), 90, dtype=np.uint8)
    if box_x is not None:
        img[100:160, box_x : box_x + 40] = 230
    return img


def test_static_scene_is_skipped_until_every_k() -> None:
    gate = MotionGate(MotionConfig(every_k=4))
    decisions = [gate.should_infer(scene(None)) for _ in range(9)]
    # first frame always; then every 4th analysed frame
    assert decisions == [True, False, False, False, True, False, False, False, True]
    assert gate.skipped == 6


def test_moving_object_triggers_inference_every_frame() -> None:
    gate = MotionGate(MotionConfig(every_k=100))
    gate.should_infer(scene(10))
    decisions = [gate.should_infer(scene(10 + 12 * i)) for i in range(1, 10)]
    assert all(decisions)
    assert gate.last_area > 0.002


def test_small_noise_is_not_motion() -> None:
    rng = np.random.default_rng(0)
    gate = MotionGate(MotionConfig(every_k=100))
    base = scene(None)
    gate.should_infer(base)
    noisy = [np.clip(base.astype(int) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8) for _ in range(5)]
    assert not any(gate.should_infer(n) for n in noisy)


def test_resolution_change_resets_background() -> None:
    gate = MotionGate(MotionConfig(every_k=100))
    gate.should_infer(scene(None))
    assert gate.should_infer(np.zeros((480, 640, 3), dtype=np.uint8))


def test_disabled_gate_infers_everything() -> None:
    gate = MotionGate(MotionConfig(enabled=False))
    assert all(gate.should_infer(scene(None)) for _ in range(5))


def test_motion_inside_tracked_boxes_is_tracked_then_detected_again() -> None:
    gate = MotionGate(MotionConfig(every_k=100, track_max=2))
    gate.decide(scene(10))
    decisions = []
    for i in range(1, 7):
        x = 10 + 6 * i
        # the area the tracked object swept since the previous frame (pixels of the 320x240 frame)
        decisions.append(gate.decide(scene(x), np.array([[x - 8.0, 98.0, x + 42.0, 162.0]])))
        if decisions[-1] is GateDecision.TRACK:
            assert gate.last_unexplained < 0.002 < gate.last_area
    assert decisions == [GateDecision.TRACK, GateDecision.TRACK, GateDecision.INFER] * 2
    assert gate.tracked == 4


def test_motion_outside_every_tracked_box_runs_the_detector() -> None:
    gate = MotionGate(MotionConfig(every_k=100, track_max=5))
    gate.decide(scene(10))
    # the tracked object is predicted far from where the motion is: a newcomer
    assert gate.decide(scene(40), np.array([[250.0, 10.0, 290.0, 60.0]])) is GateDecision.INFER
    assert gate.last_unexplained > 0.002
    # without tracks, motion always runs the detector
    assert gate.decide(scene(70), np.zeros((0, 4))) is GateDecision.INFER
    # nothing moving reuses the detections, tracks or not
    still = MotionGate(MotionConfig(every_k=100, track_max=5))
    still.decide(scene(70))
    assert still.decide(scene(70), np.array([[60.0, 98.0, 114.0, 162.0]])) is GateDecision.REUSE


def test_tracking_by_prediction_is_off_by_default() -> None:
    gate = MotionGate()
    gate.decide(scene(10))
    assert gate.decide(scene(22), np.array([[20.0, 98.0, 64.0, 162.0]])) is GateDecision.INFER
