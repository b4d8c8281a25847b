"""Which boxes are private: people only, from detections and tracks alike, grown and clipped."""

from __future__ import annotations

from smartcity.core.vision import Detection, Track
from smartcity.privacy import PRIVATE_CLASSES, private_boxes


def test_people_are_grown_by_half_their_size_and_clipped_to_the_picture() -> None:
    person = Detection((100.0, 50.0, 140.0, 130.0), "person", 0.9)
    car = Detection((10.0, 10.0, 60.0, 40.0), "car", 0.9)
    assert "person" in PRIVATE_CLASSES and "car" not in PRIVATE_CLASSES
    assert private_boxes([person, car], 320, 240) == [(80.0, 10.0, 160.0, 170.0)]
    # at the edge: clipped to 0 and to the picture size
    edge = Track(track_id=1, cls="person", box=(0.0, 200.0, 20.0, 240.0), score=0.8, t=1.0)
    assert private_boxes([edge], 320, 240) == [(0.0, 180.0, 30.0, 240.0)]
    assert private_boxes([person], 320, 240, margin=0.0) == [person.box]
    assert private_boxes([], 320, 240) == []
