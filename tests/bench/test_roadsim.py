"""bench/roadsim: camera projection, truth from true trajectories, noise levels, rules, determinism."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import yaml
from roadsim import iter_runs, rules_of, scene_names
from roadsim.camera import Camera, box_corners, project_boxes
from roadsim.noise import NOISE, Detector
from roadsim.scenes import SCENES
from roadsim.sumo import Trajectories, sumo_available
from roadsim.truth import crossings, film

from smartcity.analytics import RuleSpec, load_rules_file, validate_rule

# straight down the +y axis from the origin, 8 m up, 30 degrees down, 90 degrees wide: f = 640 px
CAM = Camera(x=0.0, y=0.0, height=8.0, yaw_deg=0.0, pitch_deg=30.0, hfov_deg=90.0, width=1280, height_px=720)


def _uv(cam: Camera, x: float, y: float, z: float = 0.0) -> tuple[float, float]:
    u, v, _ = cam.project(np.array([[x, y, z]]))
    return float(u[0]), float(v[0])


def test_ground_points_project_where_the_hand_computation_says() -> None:
    assert CAM.focal_px == pytest.approx(640.0)
    # the optical axis meets the ground 8 / tan(30) m ahead: the centre of the picture
    u, v = _uv(CAM, 0.0, 8.0 / math.tan(math.radians(30.0)))
    assert (u, v) == (pytest.approx(640.0), pytest.approx(360.0))
    # 8 m ahead the ground is 45 degrees down, 15 below the axis: v = 360 + 640 tan 15
    u, v = _uv(CAM, 0.0, 8.0)
    assert (u, v) == (pytest.approx(640.0), pytest.approx(360.0 + 640.0 * math.tan(math.radians(15.0))))
    # 2 m to the right at 16 m depth along the axis: u = 640 + 640 * 2 / 16
    u, _ = _uv(CAM, 2.0, 8.0 / math.tan(math.radians(30.0)))
    assert u == pytest.approx(720.0)
    # a compass yaw of 90 looks east: the same point to the east lands in the centre
    east = Camera(x=0.0, y=0.0, height=8.0, yaw_deg=90.0, pitch_deg=30.0, hfov_deg=90.0)
    assert _uv(east, 8.0 / math.tan(math.radians(30.0)), 0.0) == (pytest.approx(640.0), pytest.approx(360.0))


def test_boxes_behind_the_camera_or_mostly_outside_the_picture_are_dropped() -> None:
    # cars heading north: ahead at 20 m, behind the camera, and far off to the side
    cx = np.array([0.0, 0.0, 60.0])
    cy = np.array([20.0, -10.0, 20.0])
    n = len(cx)
    boxes = project_boxes(CAM, box_corners(cx, cy, np.zeros(n), np.full(n, 4.5), np.full(n, 1.8), np.full(n, 1.5)))
    assert boxes.visible.tolist() == [True, False, False]
    x1, y1, x2, y2 = boxes.box[0]
    assert 0 <= x1 < 640 < x2 <= 1280 and 0 <= y1 < y2 <= 720


def _straight(ids: list[str], xs: list[float], y0: list[float], speed: list[float],
              steps: list[int]) -> Trajectories:
    """Cars driving along y (negative speed: southwards), one row per 0.1 s step."""
    rows = []
    for k, (x, y, v) in enumerate(zip(xs, y0, speed)):
        for s in range(steps[k]):
            rows.append((s, k, x, y + v * s * 0.1, 0.0 if v > 0 else 180.0, abs(v)))
    a = np.array(rows)
    return Trajectories(step=a[:, 0].astype(np.int64), obj=a[:, 1].astype(np.int64), x=a[:, 2], y=a[:, 3],
                        angle=a[:, 4], speed=a[:, 5], ids=tuple(ids), types=("car",) * len(ids))


def test_truth_counts_a_hand_made_trajectory() -> None:
    cam = Camera(x=0.0, y=0.0, height=8.0, yaw_deg=0.0, pitch_deg=20.0, hfov_deg=90.0)
    # a line across the road 40 m ahead, from x = -6 to 6 on the ground; "in" = away from the camera
    a, b = cam.ground_to_norm(-6.0, 40.0), cam.ground_to_norm(6.0, 40.0)
    m0, m1 = cam.ground_to_norm(0.0, 40.0), cam.ground_to_norm(0.0, 41.0)
    spec = validate_rule({"id": "l", "camera_id": "c", "type": "line_count",
                          "params": {"line": [list(a), list(b)], "in_direction": [m1[0] - m0[0], m1[1] - m0[1]],
                                     "in_name": "north", "out_name": "south"}})
    # a: north at 10 m/s through the line; b: south; c: north but 20 m to the side (outside the line);
    # d: like a, but it leaves the simulation 0.1 s after its crossing (never seen on the other side)
    traj = _straight(["a", "b", "c", "d"], [0.0, -2.0, 20.0, 3.0], [20.0, 70.0, 20.0, 20.0],
                     [10.0, -10.0, 10.0, 10.0], [60, 60, 60, 26])
    got = crossings(film(cam, traj), spec, t_from=0.0, t_to=100.0, t0=1000.0)
    assert sorted((c.object_id, c.direction) for c in got) == [("a", "north"), ("b", "south")]
    # the point the rules follow is the bottom of the box: for a car seen from straight behind,
    # its rear bumper; a (front at y = 20 + 10 t, 4.5 m long) has its rear on the line at t = 2.45 s
    t_a = next(c.t for c in got if c.object_id == "a")
    assert t_a == pytest.approx(1002.45, abs=0.01)
    # b drives towards the camera: its front bumper (now nearest) reaches the line at t = 3.0 s
    t_b = next(c.t for c in got if c.object_id == "b")
    assert t_b == pytest.approx(1003.0, abs=0.01)
    # outside the window nothing is counted
    assert crossings(film(cam, traj), spec, t_from=3.5, t_to=100.0, t0=0.0) == []


def test_every_scene_rule_validates_and_round_trips_through_a_rules_file(tmp_path) -> None:
    for name in scene_names():
        rules = rules_of(SCENES[name]())
        types = {r["type"] for r in rules}
        assert "line_count" in types
        for r in rules:
            assert isinstance(validate_rule(r), RuleSpec)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(rules))
        assert [s.id for s in load_rules_file(path)] == [r["id"] for r in rules]
    assert {r["type"] for r in rules_of(SCENES["one_way_contraflow"]())} >= {"wrong_way"}
    assert {r["type"] for r in rules_of(SCENES["two_way_parking"]())} >= {"dwell"}


def _frames(n_frames: int, n_obj: int) -> list[tuple[np.ndarray, list[str], np.ndarray, np.ndarray]]:
    boxes = np.array([[100.0 + 110 * i, 300.0, 200.0 + 110 * i, 380.0] for i in range(n_obj)])
    return [(np.arange(n_obj), ["car"] * n_obj, boxes, np.zeros(n_obj)) for _ in range(n_frames)]


def test_clean_detects_every_box_exactly_and_realistic_misses_some() -> None:
    frames = _frames(300, 10)
    clean = Detector(NOISE["clean"], np.random.default_rng(1), 5.0, 1280, 720)
    for objs, classes, box, hidden in frames:
        dets = clean.frame(objs, classes, box, hidden)
        assert sorted(d.box for d in dets) == sorted(tuple(b) for b in box.tolist())
        assert all(d.cls == "car" and 0.85 <= d.score <= 0.95 for d in dets)
    assert clean.stats.missed == 0 and clean.stats.false_positives == 0
    real = Detector(NOISE["realistic"], np.random.default_rng(1), 5.0, 1280, 720)
    n_true = n_dets = 0
    for objs, classes, box, hidden in frames:
        n_true += len(objs)
        n_dets += len(real.frame(objs, classes, box, hidden))
    # big, unhidden boxes: only the random misses and the gaps (small and hidden boxes add more)
    assert 0.03 <= real.stats.missed / n_true <= 0.12
    assert real.stats.confused > 0
    # 6 false positives a minute over 60 s of frames, each shown 1-3 frames
    assert 1 <= real.stats.false_positives <= 15
    assert n_true - real.stats.missed + real.stats.false_positives <= n_dets
    # a box >= 70 % hidden by nearer ones is never detected, at any level
    objs, classes, box, _ = frames[0]
    assert clean.frame(objs, classes, box, np.full(len(objs), 0.8)) == ()


def _require_sumo() -> None:
    if not sumo_available():
        if os.environ.get("CI") == "true":
            pytest.fail("eclipse-sumo is not installed (pip install -e '.[bench]')")
        pytest.skip("eclipse-sumo not installed")


def _short(seed: int, cache, levels=("clean", "realistic")):  # noqa: ANN001, ANN202
    return list(iter_runs(quick=True, seeds=[seed], fps_list=[5.0], noise_levels=levels, duration_s=60.0,
                          scenes=["junction"], cache=cache))


def test_sumo_runs_are_deterministic_per_seed_and_noise_levels_behave(tmp_path) -> None:
    _require_sumo()
    first = _short(7, tmp_path / "a")
    again = _short(7, tmp_path / "b")  # another cache: SUMO runs again
    other = _short(8, tmp_path / "a")
    for x, y in zip(first, again):
        assert x.frames == y.frames
        assert x.truth == y.truth
    assert first[1].frames != other[1].frames
    clean, realistic = first
    assert clean.truth.crossings, "a minute of junction traffic crosses the counting lines"
    assert clean.truth == realistic.truth  # truth never depends on the noise
    assert clean.meta["noise"]["missed"] == 0
    assert sum(len(f.detections) for f in clean.frames) == clean.meta["noise"]["seen"]
    assert 0.08 <= realistic.meta["noise"]["miss_rate"] <= 0.22
    assert all(f.camera == clean.camera_id and f.width == 1280 and f.height == 720 for f in clean.frames)
    assert [f.t for f in clean.frames] == sorted(f.t for f in clean.frames)


def test_cli_writes_a_log_rules_and_truth_that_smartcity_replay_reads(tmp_path, monkeypatch) -> None:
    _require_sumo()
    from roadsim.__main__ import main

    from smartcity.replay import replay
    from smartcity.sources.detlog import read_detection_log

    monkeypatch.setenv("ROADSIM_CACHE", str(tmp_path / "cache"))
    out, rules, truth = tmp_path / "dets.jsonl", tmp_path / "rules.yaml", tmp_path / "truth.json"
    assert main(["--scene", "one_way_contraflow", "--fps", "5", "--noise", "realistic", "--seed", "2",
                 "--duration", "40", "--out", str(out), "--rules-out", str(rules), "--truth-out", str(truth)]) == 0
    frames = list(read_detection_log(out))
    assert len(frames) == 200 and frames[0].camera == "roadsim-one_way_contraflow"
    stats = replay(rules, out, tmp_path / "events.jsonl", tmp_path / "counts.jsonl")
    assert stats.frames == 200 and stats.confirmed_tracks > 0
    true = json.loads(truth.read_text())["truth"]
    counted = sum(json.loads(line)["n"] for line in (tmp_path / "counts.jsonl").read_text().splitlines())
    assert len(true["crossings"]) > 0 and counted > 0
