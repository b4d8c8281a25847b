"""Evidence JPEG (smartcity.privacy): decodable, geometry drawn, people pixelated, input untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smartcity.privacy import GEOMETRY_RGB, render_evidence


def _decode(jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.asarray(bgr[:, :, ::-1])


def _scene() -> np.ndarray:
    rng = np.random.default_rng(1)
    img = np.full((240, 320, 3), 40, np.uint8)
    img[100:200, 50:110] = rng.integers(0, 255, (100, 60, 3), dtype=np.uint8)  # a "person": fine detail
    return img


def test_jpeg_with_the_rule_line_drawn_and_the_person_pixelated() -> None:
    img = _scene()
    before = img.copy()
    jpeg = render_evidence(img, [[(0.5, 0.0), (0.5, 1.0)]], [(50, 100, 110, 200)])
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    out = _decode(jpeg).astype(int)
    assert out.shape == (240, 320, 3)
    np.testing.assert_array_equal(img, before)
    # the vertical line at x ~ 160 has the geometry colour
    col = out[20:220, 159:161].reshape(-1, 3).mean(axis=0)
    assert np.abs(col - np.array(GEOMETRY_RGB)).max() < 50
    assert np.abs(out[20:220, 140].mean(axis=0) - 40).max() < 15  # background beside it untouched
    # pixelation kills the fine detail inside the box (blocks are flat)
    original_detail = np.abs(np.diff(before[100:200, 50:110].astype(int), axis=1)).mean()
    rendered_detail = np.abs(np.diff(out[104:196, 54:106], axis=1)).mean()
    assert original_detail > 50 and rendered_detail < original_detail / 4


def test_without_pixelation_the_detail_stays_and_polygons_close() -> None:
    img = _scene()
    out = _decode(render_evidence(img, [[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9)]], [(50, 100, 110, 200)], pixelate=False))
    assert np.abs(np.diff(out[104:196, 54:106].astype(int), axis=1)).mean() > 20
    # the closing edge from (0.9, 0.9) back to (0.1, 0.1) crosses the centre
    assert np.abs(out[118:121, 158:161].reshape(-1, 3).mean(axis=0) - np.array(GEOMETRY_RGB)).max() < 60


def test_odd_sizes_and_quality() -> None:
    img = np.full((121, 161, 3), 128, np.uint8)
    small = render_evidence(img, [], [], quality=31)
    assert _decode(small).shape[:2] in ((121, 161), (122, 162))
    noisy = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert len(render_evidence(noisy, [], [], quality=2)) > len(render_evidence(noisy, [], [], quality=31))


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="RGB"):
        render_evidence(np.zeros((10, 10), np.uint8), [], [])


def test_nobody_located_hides_the_whole_picture_but_not_the_geometry() -> None:
    img = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = _decode(render_evidence(img, [[(0.0, 0.5), (1.0, 0.5)]], None, quality=2)).astype(int)
    # blocks of min(160, 120) // 6 = 20 px: flat inside a block (JPEG noise aside) where the noise was not
    block = out[0:20, 0:20].reshape(-1, 3)
    assert np.ptp(block, axis=0).max() < 25 < np.ptp(img[0:20, 0:20].reshape(-1, 3), axis=0).max()
    # the line across the middle is drawn over the pixelation
    assert np.abs(out[59:61, 20:140].reshape(-1, 3).mean(axis=0) - np.array(GEOMETRY_RGB)).max() < 50
    # pixelate=False shows the picture as it is, even with nobody located (an admin's choice)
    clear = _decode(render_evidence(img, [], None, pixelate=False, quality=2)).astype(int)
    assert np.ptp(clear[0:20, 0:20].reshape(-1, 3), axis=0).max() > 100
