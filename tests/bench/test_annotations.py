"""The by-eye ground truth in tests/data/annotations loads, follows the schema and stays inside its frames."""

from __future__ import annotations

import copy

import pytest
from annotations import (
    CKUHN_TRAFFIC,
    VTEST,
    AnnotationError,
    Annotations,
    load_annotations,
    match,
    parse_annotations,
)

FILES = {VTEST: ("vtest.avi", 768, 576), CKUHN_TRAFFIC: ("ckuhn_traffic.mp4", 640, 360)}


@pytest.mark.parametrize("path", list(FILES), ids=lambda p: p.name)
def test_file_loads_with_every_box_inside_its_frame(path):
    ann = load_annotations(path)
    assert (ann.video, ann.width, ann.height) == FILES[path]
    indexes = [f.index for f in ann.frames]
    assert indexes == sorted(set(indexes))
    for frame in ann.frames:
        for obj in frame.objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= ann.width and 0 <= y1 < y2 <= ann.height, (frame.index, obj)
    assert ann.count(vehicles=True) > 0


def test_vtest_is_every_20th_frame_with_people_in_each():
    ann = load_annotations(VTEST)
    assert [f.index for f in ann.frames] == list(range(0, 781, 20))
    assert all(any(o.cls == "person" for o in f.objects) for f in ann.frames)


def test_ckuhn_traffic_is_20_frames_evenly_spaced():
    # 734 frames decode (the container claims 754)
    ann = load_annotations(CKUHN_TRAFFIC)
    assert [f.index for f in ann.frames] == [round(k * 733 / 19) for k in range(20)]


def _sample() -> dict[str, object]:
    return {
        "video": "v.avi",
        "width": 100,
        "height": 50,
        "frames": [{"index": 0, "objects": [{"cls": "person", "box": [10, 5, 20, 40], "occluded": False}]}],
    }


def test_parse_reads_a_valid_sample():
    ann = parse_annotations(_sample())
    assert isinstance(ann, Annotations)
    assert ann.frames[0].objects[0].box == (10, 5, 20, 40)
    assert ann.count(vehicles=False) == 1
    assert ann.count(vehicles=True) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["frames"][0]["objects"][0].update(box=[10, 5, 120, 40]), "outside the 100x50 frame"),
        (lambda d: d["frames"][0]["objects"][0].update(box=[20, 5, 10, 40]), "empty"),
        (lambda d: d["frames"][0]["objects"][0].update(cls="dog"), "'dog' is not one of"),
        (lambda d: d["frames"][0]["objects"][0].update(occluded="no"), "expected true or false"),
        (lambda d: d["frames"][0]["objects"][0].update(score=0.5), "unknown keys ['score']"),
        (lambda d: d["frames"].append(copy.deepcopy(d["frames"][0])), "not after the previous frame"),
        (lambda d: d.pop("width"), "missing 'width'"),
    ],
)
def test_parse_names_the_fault(change, message):
    data = _sample()
    change(data)
    with pytest.raises(AnnotationError, match=None) as info:
        parse_annotations(data, source="sample")
    assert message in str(info.value)
    assert str(info.value).startswith("sample")


def test_match_pairs_each_object_once_by_best_iou():
    truth = [(0, 0, 10, 10), (20, 0, 30, 10)]
    found = [(1, 0, 11, 10), (0, 0, 10, 10), (20, 0, 26, 10), (50, 50, 60, 60)]
    # the exact box wins object 0; the shifted copy of it is a duplicate, not a second hit;
    # (20, 0, 26, 10) overlaps object 1 at IoU 0.6
    assert match(truth, found) == [(0, 1), (1, 2)]
    assert match(truth, found, min_iou=0.7) == [(0, 1)]
