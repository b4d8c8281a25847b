"""Privacy zones (smartcity.privacy.zones): polygons are filled exactly, concave ones included,
bad polygons are refused with their place named, the painter never touches a picture without zones."""

from __future__ import annotations

import numpy as np
import pytest

from smartcity.privacy import PrivacyZones, ZonePainter
from smartcity.privacy.zones import ZONE_RGB

L_SHAPE = ((0.1, 0.1), (0.6, 0.1), (0.6, 0.3), (0.3, 0.3), (0.3, 0.8), (0.1, 0.8))


def test_a_concave_zone_is_filled_and_its_notch_is_not() -> None:
    m = PrivacyZones((L_SHAPE,)).mask(200, 100)
    assert m[20, 50] and m[60, 40]  # the arm along the top, the leg down the left
    assert not m[60, 100]  # the notch of the L
    assert not m[95, 10]
    assert 0.15 < m.mean() < 0.25  # area 0.05 + 0.04 = 0.2 - the overlap = 0.14 .. 0.2


def test_painter_fills_zones_and_leaves_the_rest() -> None:
    img = np.full((100, 200, 3), 200, np.uint8)
    out = ZonePainter(PrivacyZones((L_SHAPE,))).paint(img)
    assert tuple(out[20, 50]) == ZONE_RGB and tuple(out[60, 100]) == (200, 200, 200)
    assert img[20, 50, 0] == 200  # the input is untouched
    assert ZonePainter().paint(img) is img


@pytest.mark.parametrize(
    ("polygons", "message"),
    [
        ([[[0, 0], [1, 0]]], "3 to 64 points"),
        ([[[0, 0], [1.2, 0], [1, 1]]], "outside the picture"),
        ([[[0, 0], [1, 0], [1, 1]]] * 33, "at most 32"),
    ],
)
def test_bad_zones_are_refused(polygons: list[list[list[float]]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrivacyZones.of(polygons)
