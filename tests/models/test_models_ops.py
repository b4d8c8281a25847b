"""Letterbox, box mapping and NMS: the tensor ops every detector backend shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.core.errors import ValidationFailed
from smartcity.models.ops import (
    batched_nms,
    box_iou,
    letterbox,
    letterbox_params,
    nms,
    postprocess,
    unletterbox,
)


def _slow_nms(boxes: list[list[float]], scores: list[float], thr: float) -> list[int]:
    """Textbook greedy NMS, one box at a time."""

    def iou(a: list[float], b: list[float]) -> float:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


def _random_boxes(rng: np.random.Generator, n: int, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    centres = rng.uniform(20, 300, size=(clusters, 2))
    c = centres[rng.integers(0, clusters, n)] + rng.normal(0, 6, size=(n, 2))
    wh = rng.uniform(8, 60, size=(n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    # Distinct scores: with ties, greedy NMS depends on the tie order, which both sides would need to share.
    scores = rng.permutation(n) / n + 0.001
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 120), clusters=st.integers(1, 8), thr=st.floats(0.05, 0.95))
def test_nms_matches_slow_greedy_reference(seed: int, n: int, clusters: int, thr: float) -> None:
    boxes, scores = _random_boxes(np.random.default_rng(seed), n, clusters)
    kept = nms(boxes, scores, thr).tolist()
    assert kept == _slow_nms(boxes.tolist(), scores.tolist(), thr)


def test_nms_needs_several_rounds_for_chains() -> None:
    # A suppresses B, so C (which only B overlaps) survives: a one-pass matrix NMS would drop C.
    boxes = torch.tensor([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.3).tolist() == [0, 2]
    assert _slow_nms(boxes.tolist(), scores.tolist(), 0.3) == [0, 2]


def test_batched_nms_only_compares_within_a_group() -> None:
    rng = np.random.default_rng(7)
    boxes, scores = _random_boxes(rng, 200, 4)
    groups = torch.tensor(rng.integers(0, 3, 200))
    kept = set(batched_nms(boxes, scores, groups, 0.5).tolist())
    expected: set[int] = set()
    for g in range(3):
        idx = torch.nonzero(groups == g).flatten()
        expected |= {int(idx[k]) for k in _slow_nms(boxes[idx].tolist(), scores[idx].tolist(), 0.5)}
    assert kept == expected
    assert len(kept) > 12  # groups overlap spatially, so per-group survivors outnumber a class-blind NMS
    assert len(nms(boxes, scores, 0.5)) < len(kept)


def test_box_iou_values() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[50 / 150, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize(("w", "h"), [(768, 576), (576, 768), (1920, 1080), (100, 37), (416, 416)])
def test_letterbox_round_trip(w: int, h: int) -> None:
    lb = letterbox_params(w, h, (416, 416))
    rng = np.random.default_rng(w * h)
    corners = np.sort(rng.uniform(0, [w, h], size=(50, 2, 2)), axis=1)  # (x1, y1) <= (x2, y2)
    x1y1x2y2 = torch.tensor(corners.reshape(50, 4), dtype=torch.float32)
    forward = x1y1x2y2.clone()
    forward[:, 0::2] = forward[:, 0::2] * lb.scale_x + lb.pad_x
    forward[:, 1::2] = forward[:, 1::2] * lb.scale_y + lb.pad_y
    assert forward.min() >= 0 and forward.max() <= 416
    assert torch.allclose(unletterbox(forward, lb), x1y1x2y2, atol=1e-3)
    # the resized image fills one side exactly and is centred on the other
    new_w, new_h = round(w * lb.scale_x), round(h * lb.scale_y)
    assert max(new_w, new_h) == 416 and abs((416 - new_w) - 2 * lb.pad_x) <= 1 and abs((416 - new_h) - 2 * lb.pad_y) <= 1


def test_unletterbox_clips_to_the_frame() -> None:
    lb = letterbox_params(800, 400, (416, 416))
    out = unletterbox(torch.tensor([[-50.0, 0.0, 500.0, 416.0]]), lb)
    assert out.tolist() == [[0.0, 0.0, 800.0, 400.0]]


def test_letterbox_places_each_frame_of_a_mixed_batch() -> None:
    wide = np.zeros((200, 400, 3), np.uint8)
    wide[50:150, 100:200] = (255, 0, 0)  # a red square
    tall = np.full((400, 200, 3), 30, np.uint8)
    tall[300:400, :] = (0, 0, 255)  # a blue bottom quarter
    batch, boxes = letterbox([wide, tall, wide.copy()], (128, 128), fill=114)
    assert batch.shape == (3, 3, 128, 128) and batch.dtype == torch.float32
    pix = (batch * 255).round().to(torch.uint8)
    # wide: scaled by 0.32 to 128x64, padded by 32 rows top and bottom
    assert (boxes[0].pad_x, boxes[0].pad_y) == (0, 32)
    assert pix[0, :, :32].eq(114).all() and pix[0, :, 96:].eq(114).all()
    assert pix[0, :, 32 + 24, 32 + 8].tolist() == [255, 0, 0]  # inside the square
    assert pix[0, :, 32 + 8, 8].tolist() == [0, 0, 0]
    assert torch.equal(pix[0], pix[2])
    # tall: 64x128, 32 columns of padding each side, blue in the bottom quarter
    assert (boxes[1].pad_x, boxes[1].pad_y) == (32, 0)
    assert pix[1, :, :, :32].eq(114).all() and pix[1, :, :, 96:].eq(114).all()
    assert pix[1, :, 120, 64].tolist() == [0, 0, 255] and pix[1, :, 20, 64].tolist() == [30, 30, 30]


def test_letterbox_half_precision_output() -> None:
    batch, _ = letterbox([np.full((10, 20, 3), 255, np.uint8)], (32, 32), dtype=torch.float16, fill=0)
    assert batch.dtype == torch.float16 and float(batch.max()) == 1.0 and float(batch.min()) == 0.0


@pytest.mark.parametrize(
    "frame",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 10, 3), np.uint8), "x"],
)
def test_letterbox_rejects_what_is_not_an_rgb_frame(frame: object) -> None:
    with pytest.raises(ValidationFailed, match=r"frames\[1\]"):
        letterbox([np.zeros((4, 4, 3), np.uint8), frame], (32, 32))  # type: ignore[list-item]


def test_postprocess_filters_classes_and_maps_back() -> None:
    names = ["person", "car", "dog"]
    lbs = [letterbox_params(832, 624, (416, 416)), letterbox_params(416, 416, (416, 416))]
    boxes = torch.tensor(
        [
            [[150, 202, 100, 100], [152, 202, 100, 100], [150, 202, 100, 100], [300, 300, 20, 20], [50, 50, 10, 10]],
            [[100, 100, 50, 50], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]],
        ],
        dtype=torch.float32,
    )
    scores = torch.zeros(2, 5, 3)
    scores[0, 0, 0] = 0.9  # person
    scores[0, 1, 0] = 0.8  # duplicate person: suppressed
    scores[0, 2, 1] = 0.7  # car on the same spot: another class, kept
    scores[0, 3, 2] = 0.95  # dog: filtered out by class
    scores[0, 4, 0] = 0.1  # under the confidence threshold
    scores[1, 0, 1] = 0.6
    class_ids = torch.tensor([0, 1])
    out = postprocess(boxes, scores, lbs, names, conf_threshold=0.25, nms_iou=0.45, max_detections=10, class_ids=class_ids)
    assert [(d.cls, round(d.score, 2)) for d in out[0]] == [("person", 0.9), ("car", 0.7)]
    # input (100, 152, 200, 252) -> original: minus the 52-row pad, divided by the 0.5 scale
    assert out[0][0].box == pytest.approx((200.0, 200.0, 400.0, 400.0))
    assert [(d.cls, d.box) for d in out[1]] == [("car", pytest.approx((75.0, 75.0, 125.0, 125.0)))]
    limited = postprocess(boxes, scores, lbs, names, conf_threshold=0.25, nms_iou=0.45, max_detections=1)
    assert [d.cls for d in limited[0]] == ["dog"]


def test_postprocess_over_the_nms_block_matches_one_image_at_a_time() -> None:
    # 2 x 2500 candidates exceed NMS_BLOCK (4096): the batch is then suppressed image by image.
    rng = np.random.default_rng(3)
    n = 2500
    xy = rng.uniform(0, 400, size=(2, n, 2))
    wh = rng.uniform(5, 40, size=(2, n, 2))
    boxes = torch.tensor(np.concatenate([xy, wh], -1), dtype=torch.float32)
    scores = torch.tensor(rng.uniform(0.3, 1.0, size=(2, n, 2)), dtype=torch.float32)
    lbs = [letterbox_params(416, 416, (416, 416))] * 2
    kwargs = {"conf_threshold": 0.25, "nms_iou": 0.5, "max_detections": 10_000}
    together = postprocess(boxes, scores, lbs, ["a", "b"], **kwargs)  # type: ignore[arg-type]
    for b in range(2):
        alone = postprocess(boxes[b : b + 1], scores[b : b + 1], lbs[:1], ["a", "b"], **kwargs)  # type: ignore[arg-type]
        assert together[b] == alone[0]
        assert 300 < len(alone[0]) < n
