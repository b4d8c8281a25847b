"""The picture an operator sees (smartcity.privacy): pixelation flattens blocks inside a box and
nothing outside, a picture with nobody located is hidden whole, the overlay is drawn over the
pixelation. Moved from the live view's tests: the live view, snapshots and evidence share it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.privacy import OverlayShape, compose, pixelate, rasterise
from smartcity.webrtc import OverlayShape as LiveOverlayShape


def noise(h: int = 120, w: int = 160) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pixelate_flattens_blocks_inside_the_box_only() -> None:
    img = noise()
    out = img.copy()
    pixelate(out, (16.0, 8.0, 112.0, 104.0))  # 96 x 96: blocks of 16
    inside = out[8:104, 16:112].astype(np.float32)
    block = inside[:16, :16]
    assert np.ptp(block.reshape(-1, 3), axis=0).max() == 0
    # each block holds its own mean (rounded down), not a constant for the whole box
    assert np.allclose(block[0, 0], img[8:24, 16:32].reshape(-1, 3).mean(axis=0), atol=1.0)
    assert len({tuple(inside[y, x]) for y in range(0, 96, 16) for x in range(0, 96, 16)}) > 30
    outside = np.ones(img.shape[:2], bool)
    outside[8:104, 16:112] = False
    assert np.array_equal(out[outside], img[outside])


@settings(max_examples=60, deadline=None)
@given(
    x1=st.floats(-50, 200), y1=st.floats(-50, 150), w=st.floats(0, 220), h=st.floats(0, 170)
)
def test_pixelate_any_box_keeps_shape_and_the_pixels_outside(x1: float, y1: float, w: float, h: float) -> None:
    img = noise()
    out = img.copy()
    pixelate(out, (x1, y1, x1 + w, y1 + h))
    assert out.shape == img.shape and out.dtype == np.uint8
    xa, ya = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    xb, yb = min(160, int(np.ceil(x1 + w))), min(120, int(np.ceil(y1 + h)))
    mask = np.ones((120, 160), bool)
    if xb > xa and yb > ya:
        mask[ya:yb, xa:xb] = False
    assert np.array_equal(out[mask], img[mask])


def test_compose_hides_everything_when_people_cannot_be_located_and_keeps_the_input() -> None:
    img = noise()
    before = img.copy()
    out = compose(img, None, pixelate_people=True, overlay=None)
    assert np.array_equal(img, before)
    # blocks of min(160, 120) // 6 = 20 pixels: at most 8 x 6 distinct colours
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 48
    assert np.array_equal(compose(img, None, pixelate_people=False, overlay=None), img)
    with pytest.raises(ValueError, match="uint8"):
        compose(img.astype(np.float32), (), pixelate_people=True, overlay=None)


def test_overlay_lines_and_closed_zones_are_drawn_over_pixelation() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    zone = OverlayShape.coerce([(0.1, 0.1), (0.5, 0.1), (0.5, 0.9)])
    line = OverlayShape(((0.6, 0.5), (0.9, 0.5)), rgb=(0, 255, 0))
    assert zone.closed and not line.closed
    raster = rasterise([zone, line], 200, 100)
    out = compose(img, [(0.0, 0.0, 200.0, 100.0)], pixelate_people=True, overlay=raster)
    yellow = np.all(out == (255, 200, 0), axis=2)
    green = np.all(out == (0, 255, 0), axis=2)
    # the closing edge (0.5, 0.9) -> (0.1, 0.1) of the zone is drawn: a pixel on its midpoint
    assert yellow[round(0.5 * 99), round(0.3 * 199)]
    assert green[round(0.5 * 99), round(0.75 * 199)] and not green[10, 10]
    # thickness 4 (4:2:0 chroma keeps the hue): a horizontal line covers 4 rows
    assert green[:, round(0.75 * 199)].sum() == 4
    with pytest.raises(ValueError, match="rasterised for"):
        compose(np.zeros((50, 50, 3), np.uint8), (), pixelate_people=False, overlay=raster)


def test_plain_point_lists_draw_as_their_shapes_and_the_live_view_shares_the_type() -> None:
    assert LiveOverlayShape is OverlayShape
    plain = rasterise([[(0.1, 0.1), (0.5, 0.1), (0.5, 0.9)], [(0.6, 0.5), (0.9, 0.5)]], 200, 100)
    typed = rasterise(
        [OverlayShape(((0.1, 0.1), (0.5, 0.1), (0.5, 0.9)), closed=True), OverlayShape(((0.6, 0.5), (0.9, 0.5)))],
        200,
        100,
    )
    assert len(plain.layers) == len(typed.layers) == 2
    for (a, rgb_a), (b, rgb_b) in zip(plain.layers, typed.layers, strict=True):
        assert np.array_equal(a, b) and rgb_a == rgb_b
    # a single point draws nothing
    assert rasterise([[(0.5, 0.5)]], 200, 100).layers == ()
