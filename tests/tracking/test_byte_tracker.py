"""ByteTracker behaviour on synthetic scenes: identities through crossings, occlusions,
dropped and weak detections, class flicker, confirmation, id uniqueness, timing."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from smartcity.core.vision import Attributes, Detection, Keypoint, Track
from smartcity.tracking import ByteTracker, TrackerConfig

FPS = 5.0


@dataclass(frozen=True)
class Mover:
    """A box moving in a straight line between frames `start` and `end` (inclusive)."""

    x: float
    y: float
    vx: float
    vy: float
    w: float = 60.0
    h: float = 40.0
    start: int = 0
    end: int = 10**9

    def box(self, frame: int) -> tuple[float, float, float, float]:
        k = frame - self.start
        cx, cy = self.x + self.vx * k, self.y + self.vy * k
        return (cx - self.w / 2, cy - self.h / 2, cx + self.w / 2, cy + self.h / 2)

    def alive(self, frame: int) -> bool:
        return self.start <= frame <= self.end


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _owners(
    tracks: list[Track], shown: list[tuple[int, tuple[float, ...]]], min_iou: float = 0.5
) -> dict[int, Track]:
    """One-to-one: each shown object gets the updated track overlapping it most (best pairs first)."""
    pairs = sorted(
        (
            (_iou(tr.box, box), k, n)
            for k, box in shown
            for n, tr in enumerate(tracks)
            if tr.time_since_update == 0
        ),
        reverse=True,
    )
    out: dict[int, Track] = {}
    used: set[int] = set()
    for v, k, n in pairs:
        if v >= min_iou and k not in out and n not in used:
            out[k] = tracks[n]
            used.add(n)
    return out


def _run(
    movers: list[Mover],
    frames: int,
    *,
    tracker: ByteTracker | None = None,
    drop: float = 0.0,
    jitter: float = 0.0,
    hidden: dict[int, set[int]] | None = None,
    score: float = 0.9,
    seed: int = 0,
) -> tuple[ByteTracker, dict[int, dict[int, Track]], list[list[Track]]]:
    """Feed the scene to a tracker; returns per object the track that owned it at each frame
    where it was detected, and the raw output of every frame."""
    rng = np.random.default_rng(seed)
    tracker = tracker or ByteTracker()
    owners: dict[int, dict[int, Track]] = defaultdict(dict)
    outputs: list[list[Track]] = []
    for f in range(frames):
        dets: list[Detection] = []
        shown: list[tuple[int, tuple[float, ...]]] = []
        for k, m in enumerate(movers):
            if not m.alive(f) or (hidden and f in hidden.get(k, set())) or rng.random() < drop:
                continue
            box = tuple(float(v) for v in np.asarray(m.box(f)) + rng.normal(0.0, jitter, 4) * (jitter > 0))
            dets.append(Detection(box=(box[0], box[1], box[2], box[3]), cls="car", score=score))
            shown.append((k, box))
        order = rng.permutation(len(dets))  # detectors give no stable order
        tracks = tracker.update([dets[i] for i in order], f / FPS)
        outputs.append(tracks)
        for k, owner in _owners(tracks, shown).items():
            owners[k][f] = owner
    return tracker, owners, outputs


def test_two_objects_crossing_paths_keep_their_ids() -> None:
    # An X: one goes down-right, the other up-right; their boxes overlap for several frames
    # (at the closest frame they are 5 px apart: IoU 0.78).
    a = Mover(x=100, y=100, vx=12, vy=6)
    b = Mover(x=100, y=345, vx=12, vy=-6)
    _, owners, _ = _run([a, b], 41)
    ids_a = {tr.track_id for tr in owners[0].values()}
    ids_b = {tr.track_id for tr in owners[1].values()}
    assert len(owners[0]) == 41 and len(owners[1]) == 41
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_head_on_crossing_on_the_same_lane_keeps_ids() -> None:
    a = Mover(x=100, y=200, vx=15, vy=0)
    b = Mover(x=700, y=210, vx=-15, vy=0)
    _, owners, _ = _run([a, b], 40, jitter=1.0)
    assert {tr.track_id for tr in owners[0].values()} != {tr.track_id for tr in owners[1].values()}
    for k in (0, 1):
        ids = Counter(tr.track_id for tr in owners[k].values())
        assert len(ids) == 1, ids


def test_occlusion_shorter_than_max_age_keeps_the_id_and_predicts_the_box() -> None:
    m = Mover(x=100, y=200, vx=10, vy=2)
    hidden = set(range(20, 32))  # 12 frames behind a bus
    _, owners, outputs = _run([m], 50, hidden={0: hidden})
    assert {tr.track_id for tr in owners[0].values()} == {1}
    assert min(owners[0]) == 0 and max(owners[0]) == 49 and len(owners[0]) == 50 - len(hidden)
    for f in sorted(hidden):
        (tr,) = outputs[f]
        assert tr.track_id == 1 and tr.confirmed
        assert tr.time_since_update == f - 19
        # the box keeps moving with the learnt velocity
        cx = (tr.box[0] + tr.box[2]) / 2
        assert abs(cx - (100 + 10 * f)) < 15, (f, cx)
    assert outputs[32][0].time_since_update == 0


def test_tracks_carry_the_keypoints_and_attributes_of_their_latest_matched_detection() -> None:
    walker, car = Mover(x=100, y=200, vx=10, vy=0), Mover(x=600, y=400, vx=-12, vy=0)
    tracker = ByteTracker()

    def frame(f: int, with_pose: bool = True, car_seen: bool = True) -> list[Track]:
        x1, y1, _, _ = walker.box(f)
        pose = (Keypoint(x1 + f, y1, 0.9), Keypoint(x1, y1 + 2 * f, 0.5)) if with_pose else ()
        dets = [Detection(walker.box(f), "person", 0.9, keypoints=pose, attributes=Attributes({"frame": float(f)}))]
        if car_seen:
            dets.append(Detection(car.box(f), "car", 0.9, attributes=Attributes({"colour": "red"})))
        return tracker.update(dets, f / FPS)

    for f in range(5):
        tracks = frame(f)
    person, red_car = tracks
    assert (person.cls, red_car.cls) == ("person", "car")
    x1, y1, _, _ = walker.box(4)
    assert person.keypoints == (Keypoint(x1 + 4, y1, 0.9), Keypoint(x1, y1 + 8, 0.5))
    assert dict(person.attributes) == {"frame": 4.0}
    assert red_car.keypoints == () and dict(red_car.attributes) == {"colour": "red"}
    # a lost track keeps what it last carried; the next match replaces it, even with nothing
    _, lost_car = frame(5, car_seen=False)
    assert lost_car.time_since_update == 1 and dict(lost_car.attributes) == {"colour": "red"}
    person, _ = frame(6, with_pose=False)
    assert person.keypoints == () and dict(person.attributes) == {"frame": 6.0}


def test_track_older_than_max_age_is_dropped_and_a_returning_object_gets_a_new_id() -> None:
    cfg = TrackerConfig(max_age=5)
    m = Mover(x=100, y=200, vx=0, vy=0)
    tracker = ByteTracker(cfg)
    _, owners, outputs = _run([m], 20, tracker=tracker, hidden={0: set(range(5, 11))})
    # missed frames 5..10: alive with time_since_update 1..5, gone at the 6th miss
    assert [outputs[f][0].time_since_update for f in range(5, 10)] == [1, 2, 3, 4, 5]
    assert outputs[10] == []
    assert owners[0][4].track_id == 1
    assert {owners[0][f].track_id for f in range(11, 20)} == {2}


def test_ten_percent_dropped_detections_do_not_fragment_tracks() -> None:
    movers = [Mover(x=80 + 150 * k, y=100 + 90 * (k % 3), vx=4 + k, vy=1.5 * (k % 2)) for k in range(6)]
    _, owners, outputs = _run(movers, 150, drop=0.1, jitter=1.0, seed=3)
    confirmed_ids: list[int] = []
    for k in range(6):
        confirmed = {f: tr.track_id for f, tr in owners[k].items() if tr.confirmed}
        ids = set(confirmed.values())
        assert len(ids) == 1, (k, Counter(confirmed.values()))
        # once confirmed, the object stays with that track at every frame it is detected
        first = min(confirmed)
        assert all(f in confirmed for f in owners[k] if f >= first)
        assert first < 15
        confirmed_ids.extend(ids)
    assert len(set(confirmed_ids)) == 6
    # and no confirmed track is a ghost: all confirmed live tracks belong to an object
    assert {tr.track_id for tr in outputs[-1] if tr.confirmed} == set(confirmed_ids)


def test_low_score_detections_never_start_tracks() -> None:
    m = Mover(x=100, y=200, vx=5, vy=0)
    _, _, outputs = _run([m], 30, score=0.3)
    assert all(out == [] for out in outputs)
    # a score between high_score and new_track_score matches tracks but starts none either
    _, _, outputs = _run([m], 30, score=0.42)
    assert all(out == [] for out in outputs)


def test_low_score_detections_extend_a_track_seen_on_the_previous_frame() -> None:
    tracker = ByteTracker()
    m = Mover(x=100, y=200, vx=8, vy=0)
    for f in range(5):
        tracker.update([Detection(m.box(f), "car", 0.9)], f / FPS)
    for f in range(5, 20):  # partly occluded: the detector is unsure
        (tr,) = tracker.update([Detection(m.box(f), "car", 0.2)], f / FPS)
        assert tr.track_id == 1 and tr.time_since_update == 0 and tr.score == pytest.approx(0.2)
        assert abs(tr.box[0] - m.box(f)[0]) < 6
    assert tr.hits == 20


def test_low_score_detection_does_not_revive_a_lost_track() -> None:
    tracker = ByteTracker()
    m = Mover(x=100, y=200, vx=0, vy=0)
    for f in range(5):
        tracker.update([Detection(m.box(f), "car", 0.9)], f / FPS)
    tracker.update([], 5 / FPS)
    (tr,) = tracker.update([Detection(m.box(6), "car", 0.3)], 6 / FPS)
    assert tr.time_since_update == 2
    (tr,) = tracker.update([Detection(m.box(7), "car", 0.9)], 7 / FPS)
    assert tr.track_id == 1 and tr.time_since_update == 0


def test_unconfirmed_tracks_are_flagged_until_min_hits_matches() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3, tentative_max_age=0))
    box = (10.0, 10.0, 50.0, 40.0)
    flags = [tracker.update([Detection(box, "person", 0.9)], f / FPS)[0].confirmed for f in range(4)]
    assert flags == [False, False, True, True]
    # a tentative track that misses a frame ends (and its id is not reused)
    other = (300.0, 300.0, 340.0, 380.0)
    out = tracker.update([Detection(box, "person", 0.9), Detection(other, "person", 0.9)], 4 / FPS)
    assert [(t.track_id, t.confirmed) for t in out] == [(1, True), (2, False)]
    out = tracker.update([Detection(box, "person", 0.9)], 5 / FPS)
    assert [t.track_id for t in out] == [1]
    out = tracker.update([Detection(box, "person", 0.9), Detection(other, "person", 0.9)], 6 / FPS)
    assert [t.track_id for t in out] == [1, 3]


def test_a_tentative_track_survives_tentative_max_age_missed_frames() -> None:
    """One missed detection (one frame in ten for a real detector) does not split a young track;
    two in a row end it. Hits need not be consecutive to confirm."""
    tracker = ByteTracker(TrackerConfig(min_hits=3, tentative_max_age=1))
    m = Mover(x=100, y=200, vx=20, vy=0)
    assert [t.track_id for t in tracker.update([Detection(m.box(0), "car", 0.9)], 0.0)] == [1]
    (tr,) = tracker.update([], 1 / FPS)
    assert tr.track_id == 1 and tr.time_since_update == 1 and not tr.confirmed
    (tr,) = tracker.update([Detection(m.box(2), "car", 0.9)], 2 / FPS)
    assert tr.track_id == 1 and tr.hits == 2 and not tr.confirmed
    (tr,) = tracker.update([Detection(m.box(3), "car", 0.9)], 3 / FPS)
    assert tr.track_id == 1 and tr.confirmed
    # a new tentative track missing two frames in a row ends
    other = Mover(x=600, y=500, vx=0, vy=0)
    out = tracker.update([Detection(m.box(4), "car", 0.9), Detection(other.box(4), "car", 0.9)], 4 / FPS)
    assert [t.track_id for t in out] == [1, 2]
    tracker.update([Detection(m.box(5), "car", 0.9)], 5 / FPS)
    out = tracker.update([Detection(m.box(6), "car", 0.9)], 6 / FPS)
    assert [t.track_id for t in out] == [1]


def test_fast_vehicle_keeps_one_track_at_5_fps() -> None:
    """A car near the camera that moves 0.8 of its length per analysed frame never overlaps its
    previous box by IoU 0.3: distance gating with a velocity learnt from the first two sightings
    keeps one track (IoU-only association started a new track on every frame)."""
    tracker = ByteTracker()
    car = Mover(x=100, y=500, vx=160, vy=4, w=200, h=110)
    ids = set()
    for f in range(7):
        out = tracker.update([Detection(car.box(f), "car", 0.8)], f / FPS)
        ids |= {t.track_id for t in out if t.time_since_update == 0}
    assert ids == {1}
    (tr,) = out
    assert tr.confirmed and tr.velocity[0] == pytest.approx(160 * FPS, rel=0.1)


def test_fast_neighbours_in_opposite_lanes_do_not_swap() -> None:
    tracker = ByteTracker()
    east = Mover(x=100, y=400, vx=120, vy=0, w=180, h=100)
    west = Mover(x=1100, y=520, vx=-120, vy=0, w=180, h=100)
    owner: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(9):
        out = tracker.update([Detection(east.box(f), "car", 0.8), Detection(west.box(f), "car", 0.8)], f / FPS)
        for k, m in enumerate((east, west)):
            owner[k] |= {t.track_id for t in out if t.time_since_update == 0 and _iou(t.box, m.box(f)) > 0.5}
    assert owner == {0: {1}, 1: {2}}


def test_a_still_track_missed_for_a_frame_does_not_take_the_box_of_the_car_queued_behind() -> None:
    """Far from the camera the car queued behind stands about half a box away. When the standing car
    was missed on the frame where the one behind was first detected, the standing car's track took
    that box (a still track's gate was as wide as a moving one's): an identity swap, which a counting
    line between the two cars counted as two crossings. The tight still gate keeps them apart."""
    front = (340.0, 247.0, 400.0, 292.0)
    behind = (326.0, 232.0, 374.0, 270.0)
    outcomes = {}
    for still_distance in (0.6, TrackerConfig().still_distance):
        tracker = ByteTracker(TrackerConfig(still_distance=still_distance))
        for f in range(10):
            tracker.update([Detection(front, "car", 0.8)], f / FPS)
        out = tracker.update([Detection(behind, "car", 0.8)], 10 / FPS)
        outcomes[still_distance] = {t.track_id: t.time_since_update for t in out}
    assert outcomes[0.6] == {1: 0}  # the old, wide gate: track 1 jumped onto the car behind
    assert outcomes[TrackerConfig().still_distance] == {1: 1, 2: 0}  # track 1 waits, the car behind is new


def test_a_vehicle_hidden_while_driving_away_is_found_again_smaller_and_short_of_its_prediction() -> None:
    """A car driving away from the camera slows down and shrinks in the picture (perspective). Hidden
    for eight frames (behind a bus), it comes out at a third of its size, half way to where constant
    velocity predicted it, outside the distance and size gates: it used to start a second track (the
    crossing of a far counting line during the gap was lost). A box beside its path is another object."""

    def box(k: int, dx: float = 0.0) -> tuple[float, float, float, float]:
        bottom = 200 + 400 / (1 + 0.2 * k)
        h = 0.3 * (bottom - 200)
        cx = 640 - 2 * k + dx
        return (cx - 0.75 * h, bottom - h, cx + 0.75 * h, bottom)

    tracker = ByteTracker()
    for k in range(15):
        dets = [] if 4 <= k <= 11 else [Detection(box(k), "car", 0.8)]
        if k >= 12:
            dets.append(Detection(box(k, dx=200.0), "car", 0.8))  # another car, in the next lane
        out = tracker.update(dets, k / FPS, (1280, 720))
    found = {t.track_id: t for t in out if t.time_since_update == 0}
    assert set(found) == {1, 2}
    assert _iou(found[1].box, box(14)) > 0.8 and _iou(found[2].box, box(14, dx=200.0)) > 0.8


def test_vehicle_entering_the_picture_keeps_one_track() -> None:
    """A car driving in from the left edge at 5 fps: its cut box grows from the edge, so its centre
    moves at half speed and its width doubles between frames. Told the frame size, the tracker
    follows the inner edge and keeps one track; the cut box starts it."""
    tracker = ByteTracker()
    ids = set()
    for f in range(6):
        front = 60.0 + 200.0 * f  # the car's front edge, 240 px long
        box = (max(0.0, front - 240.0), 400.0, front, 520.0)
        out = tracker.update([Detection(box, "car", 0.8)], f / FPS, (1280, 720))
        ids |= {t.track_id for t in out if t.time_since_update == 0}
    assert ids == {1}


def test_a_track_that_left_the_picture_does_not_take_the_next_object_entering_there() -> None:
    """A bus drives out on the left; a moment later a car comes in from the same place, the other
    way. Told the frame size, the tracker drops the bus's lost track once predicted outside, so the
    car starts its own track instead of continuing the bus's (which made it a bus going backwards)."""
    tracker = ByteTracker()
    bus = Mover(x=400, y=450, vx=-90, vy=0, w=260, h=120)
    for f in range(6):
        x1, y1, x2, y2 = bus.box(f)
        if x2 > 0:
            tracker.update([Detection((max(x1, 0.0), y1, x2, y2), "bus", 0.9)], f / FPS, (1280, 720))
    tracker.update([], 6 / FPS, (1280, 720))
    car = (0.0, 450.0 - 55, 120.0, 450.0 + 55)  # overlaps the bus's last, cut box
    out = tracker.update([Detection(car, "car", 0.9)], 7 / FPS, (1280, 720))
    assert [(t.track_id, t.cls, t.hits) for t in out] == [(2, "car", 1)]


def test_nested_box_of_a_bus_starts_no_second_track() -> None:
    tracker = ByteTracker()
    bus = Mover(x=400, y=300, vx=30, vy=0, w=400, h=160)
    for f in range(6):
        whole = bus.box(f)
        rear = (whole[0], whole[1] + 10, whole[0] + 150, whole[3])
        out = tracker.update([Detection(whole, "bus", 0.9), Detection(rear, "truck", 0.7)], f / FPS)
    assert [t.track_id for t in out] == [1]
    # a person in front of the bus is no duplicate
    person = (bus.box(6)[0] + 50, 250.0, bus.box(6)[0] + 90, 380.0)
    out = tracker.update([Detection(bus.box(6), "bus", 0.9), Detection(person, "person", 0.9)], 6 / FPS)
    assert [t.track_id for t in out] == [1, 2]


def test_min_hits_one_confirms_at_once() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    (tr,) = tracker.update([Detection((0.0, 0.0, 10.0, 10.0), "car", 0.9)], 0.0)
    assert tr.confirmed and tr.hits == 1 and tr.age == 1


def test_ids_are_never_reused_even_after_reset() -> None:
    rng = np.random.default_rng(5)
    tracker = ByteTracker(TrackerConfig(max_age=3, min_hits=2))
    seen_dead: set[int] = set()
    live_before: set[int] = set()
    max_id = 0
    for f in range(300):
        if f == 150:
            tracker.reset()
            assert tracker.live_count == 0
            seen_dead |= live_before
            live_before = set()
        dets = [
            Detection((x, y, x + 40, y + 40), "car", 0.9)
            for x, y in rng.uniform(0, 1000, size=(int(rng.integers(0, 6)), 2)).tolist()
        ]
        out = tracker.update(dets, f / FPS)
        ids = [t.track_id for t in out]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        live = set(ids)
        assert not (live & seen_dead), live & seen_dead
        new = live - live_before
        assert all(i > max_id for i in new)
        max_id = max([max_id, *live])
        seen_dead |= live_before - live
        live_before = live
    assert max_id > 100  # the scene really churned


def test_flickering_class_does_not_flip_the_track() -> None:
    tracker = ByteTracker()
    box = (100.0, 100.0, 180.0, 160.0)
    classes = ["car", "car", "truck", "car", "car", "truck", "car", "truck", "car", "car"] * 3
    for f, cls in enumerate(classes):
        (tr,) = tracker.update([Detection(box, cls, 0.9)], f / FPS)
        assert tr.cls == "car", (f, cls)
    # a lasting change of opinion does win, once it holds the majority of recent detections
    flips = []
    for f in range(30, 60):
        (tr,) = tracker.update([Detection(box, "truck", 0.9)], f / FPS)
        flips.append(tr.cls)
    assert flips[-1] == "truck" and flips[0] == "car"
    assert flips.index("truck") <= 12


def test_velocity_is_in_pixels_per_second_and_a_skipped_frame_is_predicted_further() -> None:
    tracker = ByteTracker()
    m = Mover(x=100, y=100, vx=10, vy=-4)
    for f in range(30):
        (tr,) = tracker.update([Detection(m.box(f), "bus", 0.9)], f / FPS)
    assert tr.velocity == pytest.approx((10 * FPS, -4 * FPS), rel=0.05)
    # the source skips three frames (motion gate): the box jumped 40 px, still the same track
    (tr,) = tracker.update([Detection(m.box(34), "bus", 0.9)], 34 / FPS)
    assert tr.track_id == 1 and tr.time_since_update == 0
    assert tr.box[0] == pytest.approx(m.box(34)[0], abs=3)


def test_repeated_or_backwards_timestamps_are_tolerated_and_nan_rejected() -> None:
    tracker = ByteTracker()
    box = (0.0, 0.0, 20.0, 20.0)
    for t in (1.0, 1.2, 1.2, 0.5, 0.7):
        (tr,) = tracker.update([Detection(box, "car", 0.9)], t)
    assert tr.track_id == 1 and tr.hits == 5
    with pytest.raises(ValueError, match="finite"):
        tracker.update([], float("nan"))


def test_non_finite_detections_are_ignored() -> None:
    tracker = ByteTracker()
    out = tracker.update(
        [
            Detection((float("nan"), 0.0, 10.0, 10.0), "car", 0.9),
            Detection((0.0, 0.0, 10.0, 10.0), "car", float("nan")),
        ],
        0.0,
    )
    assert out == []


def test_config_rejects_unknown_fields_bad_bounds_and_disordered_scores() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TrackerConfig(iou=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="match_iou"):
        TrackerConfig(match_iou=0.0)
    with pytest.raises(ValidationError, match="low_score"):
        TrackerConfig(low_score=0.6, high_score=0.5)
    with pytest.raises(ValidationError, match="new_track_score"):
        TrackerConfig(new_track_score=0.3)
    cfg = TrackerConfig()
    assert (cfg.high_score, cfg.low_score, cfg.new_track_score, cfg.match_iou, cfg.min_hits, cfg.max_age) == (
        0.4,
        0.1,
        0.45,
        0.3,
        3,
        30,
    )
    assert all(f.description for f in TrackerConfig.model_fields.values())


@st.composite
def _scenes(draw: st.DrawFn) -> tuple[list[Mover], int, int]:
    frames = draw(st.integers(30, 70))
    movers = []
    for _ in range(draw(st.integers(1, 5))):
        start = draw(st.integers(0, frames - 20))
        movers.append(
            Mover(
                x=draw(st.floats(100, 1180)),
                y=draw(st.floats(80, 640)),
                vx=draw(st.floats(-10, 10)),
                vy=draw(st.floats(-6, 6)),
                w=draw(st.floats(40, 120)),
                h=draw(st.floats(40, 120)),
                start=start,
                end=draw(st.integers(start + 15, frames - 1)),
            )
        )
    return movers, frames, draw(st.integers(0, 2**31))


def _max_overlap(movers: list[Mover], frames: int) -> float:
    worst = 0.0
    for f in range(frames):
        boxes = [m.box(f) for m in movers if m.alive(f)]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                worst = max(worst, _iou(boxes[i], boxes[j]))
    return worst


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(scene=_scenes())
def test_property_straight_trajectories_keep_one_id_for_most_of_their_life(
    scene: tuple[list[Mover], int, int],
) -> None:
    movers, frames, seed = scene
    # Two objects merged into one box are ambiguous for any tracker; crossings are allowed.
    assume(_max_overlap(movers, frames) < 0.5)
    _, owners, _ = _run(movers, frames, jitter=1.5, seed=seed)
    for k, m in enumerate(movers):
        life = m.end - m.start + 1
        ids = Counter(tr.track_id for tr in owners[k].values())
        assert ids, k
        main_id, n = ids.most_common(1)[0]
        assert n >= 0.9 * life, (k, ids, life)


def test_coast_predicts_without_ageing_and_the_next_update_matches() -> None:
    """On a frame the detector did not see, tracks move on at their velocity; no track is
    missed or confirmed by it, and the next detection is matched to the same id."""
    mover = Mover(x=100.0, y=100.0, vx=10.0, vy=0.0)
    tracker = ByteTracker()
    for f in range(5):
        tracker.update([Detection(box=mover.box(f), cls="car", score=0.9)], f / FPS)
    before = tracker.update([Detection(box=mover.box(5), cls="car", score=0.9)], 5 / FPS)[0]
    swept = tracker.predicted_boxes(7 / FPS)
    assert swept.shape == (1, 4) and swept[0, 0] <= before.box[0] and swept[0, 2] >= mover.box(7)[2] - 6.0
    for f in (6, 7, 8):
        (coasted,) = tracker.coast(f / FPS)
        assert coasted.track_id == before.track_id and coasted.time_since_update == 0
        assert coasted.hits == before.hits and coasted.confirmed
        assert _iou(coasted.box, mover.box(f)) > 0.8, (f, coasted.box, mover.box(f))
    (after,) = tracker.update([Detection(box=mover.box(9), cls="car", score=0.9)], 9 / FPS)
    assert after.track_id == before.track_id and after.hits == before.hits + 1
    # a tentative track is not ended by frames the detector did not see
    fresh = ByteTracker()
    fresh.update([Detection(box=(0.0, 0.0, 10.0, 10.0), cls="car", score=0.9)], 0.0)
    assert len(fresh.coast(0.2)) == 1 and fresh.predicted_boxes(0.4).shape == (0, 4)
    assert fresh.predicted_boxes(0.4, established_only=False).shape == (1, 4)


def test_a_car_track_missing_its_box_does_not_take_the_bicycle_queued_beside_it() -> None:
    """A car waits at the stop line with a bicycle beside it, whose box lies mostly inside the car's.
    On a frame where the car was missed (hidden) and the bicycle boxed weakly, the car's track took the
    bicycle's box (IoU 0.36): its box shrank, it lost the car, and the car's crossing went uncounted.
    Association stays within class groups; without them (class_groups=()) the old swap comes back."""
    car = (600.0, 300.0, 700.0, 380.0)
    bicycle = (615.0, 320.0, 665.0, 378.0)
    outcomes = {}
    for groups in ((), TrackerConfig().class_groups):
        tracker = ByteTracker(TrackerConfig(class_groups=groups))
        for f in range(10):
            tracker.update([Detection(car, "car", 0.8)], f / FPS)
        out = tracker.update([Detection(bicycle, "bicycle", 0.35)], 10 / FPS)
        outcomes[groups] = {t.track_id: (t.time_since_update, t.cls) for t in out}
        # a strong bicycle box starts its own track instead
        out = tracker.update([Detection(car, "car", 0.8), Detection(bicycle, "bicycle", 0.8)], 11 / FPS)
        outcomes[(groups, "strong")] = {t.track_id: (t.time_since_update, t.cls) for t in out}
    assert outcomes[()] == {1: (0, "car")}  # class-blind: the car's track took the bicycle's box
    assert outcomes[TrackerConfig().class_groups] == {1: (1, "car")}
    assert outcomes[(TrackerConfig().class_groups, "strong")] == {1: (0, "car"), 2: (0, "bicycle")}


def test_classes_within_a_group_still_match_and_groups_must_not_overlap() -> None:
    """A detector flickering between car and truck keeps one track; a class named in two groups is
    rejected with the class in the message."""
    tracker = ByteTracker()
    m = Mover(x=100, y=300, vx=30, vy=0)
    for f in range(6):
        out = tracker.update([Detection(m.box(f), "truck" if f % 2 else "car", 0.8)], f / FPS)
    assert [(t.track_id, t.time_since_update) for t in out] == [(1, 0)]
    with pytest.raises(ValidationError, match="truck"):
        TrackerConfig(class_groups=(("car", "truck"), ("truck", "bus")))


def test_a_vehicle_driving_away_keeps_one_track_while_it_slows_down_in_the_picture() -> None:
    """A motorcycle entering near the camera and driving away at 50 km/h: its box shrinks by a fifth
    and its move in the picture by as much from one frame (5 fps) to the next. Constant velocity
    overshoots it by more than the distance gate; measured to the last part of the predicted move,
    the gate keeps its track (it used to start a new one on the fourth frame, after the line)."""
    tracker = ByteTracker()
    cx, cy, w = 1160.0, 600.0, 160.0
    ids = set()
    for f in range(8):
        h = 0.9 * w
        out = tracker.update([Detection((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), "motorcycle", 0.9)],
                             f / FPS, (1280, 720))
        ids |= {t.track_id for t in out if t.time_since_update == 0}
        cx, cy, w = cx - 0.75 * w, cy - 0.35 * w, 0.8 * w
    assert ids == {1}


def test_a_track_seen_twice_bridges_a_gap_of_the_detector() -> None:
    """A bus entering the picture is boxed twice, then missed for four frames (a detector's gap): seen
    twice, its track has a velocity and waits for it as a confirmed one does, instead of ending after
    one miss (the bus came back as a new track past the counting line). A track seen once still ends."""
    tracker = ByteTracker()
    bus = Mover(x=150, y=450, vx=60, vy=-10, w=260, h=150)
    lone = Mover(x=900, y=200, vx=0, vy=0)
    for f in range(8):
        dets = [] if 2 <= f <= 5 else [Detection(bus.box(f), "bus", 0.9)]
        if f == 1:
            dets.append(Detection(lone.box(f), "car", 0.9))
        out = tracker.update(dets, f / FPS, (1280, 720))
    assert [(t.track_id, t.hits, t.time_since_update) for t in out] == [(1, 4, 0)]


def test_nominal_interval_is_the_median_of_the_last_window_of_intervals() -> None:
    """The frame interval the tracker steps by is statistics.median of its last INTERVAL_WINDOW intervals
    (kept sorted beside them), through repeats, drops, jitter and a camera clock reset."""
    import statistics

    from smartcity.tracking.byte_tracker import INTERVAL_WINDOW

    rng = np.random.default_rng(5)
    tracker = ByteTracker()
    t, seen = 0.0, []
    for k in range(300):
        last = t
        t = t + float(rng.choice([0.2, 0.2, 0.4, 0.1, 0.2 + rng.normal(0, 0.01)])) if k != 150 else 0.0
        tracker.update([], t)  # k == 150: a clock reset, one frame, no interval kept
        if k and k != 150:
            seen.append(t - last)
            assert tracker._nominal_dt == statistics.median(seen[-INTERVAL_WINDOW:])
    tracker.reset()
    assert tracker._nominal_dt is None and not tracker._sorted_intervals
