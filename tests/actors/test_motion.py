from __future__ import annotations

import numpy as np

from smartcity.actors.motion import MotionConfig, MotionGate


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
