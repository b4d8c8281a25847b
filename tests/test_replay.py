"""Detections logs (recorder and validating reader) and offline replay through tracker and rules."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from smartcity.core.errors import ValidationFailed
from smartcity.core.vision import Detection
from smartcity.sources.detlog import (
    DetectionLogError,
    DetectionLogWriter,
    FrameRecord,
    read_detection_log,
)

GOOD = '{"camera":"c1","t":1.5,"width":640,"height":480,"detections":[{"box":[1,2,30,40],"class":"car","score":0.9}]}'


def test_writer_round_trips_frames_and_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "det.jsonl"
    dets = [
        Detection(box=(np.float32(10.5), 20.0, 110.25, 80.0), cls="car", score=np.float32(0.75)),  # type: ignore[arg-type]
        Detection(box=(0.0, 0.0, 5.0, 5.0), cls="person", score=0.125),
    ]
    writer = DetectionLogWriter(path)
    writer.write("north", 1000.2, 1920, 1080, dets)
    # flushed: readable before close
    (first,) = list(read_detection_log(path))
    assert first == FrameRecord(
        camera="north",
        t=1000.2,
        width=1920,
        height=1080,
        detections=(
            Detection(box=(10.5, 20.0, 110.25, 80.0), cls="car", score=0.75),
            Detection(box=(0.0, 0.0, 5.0, 5.0), cls="person", score=0.125),
        ),
    )
    writer.write("south", 1000.4, 640, 480, [])
    writer.close()
    writer.close()
    assert writer.frames_written == 2
    records = list(read_detection_log(path))
    assert [(r.camera, r.t, r.detections) for r in records] == [
        ("north", 1000.2, first.detections),
        ("south", 1000.4, ()),
    ]
    with pytest.raises(ValueError, match="closed"):
        writer.write("north", 1001.0, 1920, 1080, [])
    # only the documented keys are written: no image, no identity
    assert set(json.loads(path.read_text().splitlines()[0])) == {
        "camera",
        "t",
        "width",
        "height",
        "detections",
    }


def test_writer_refuses_invalid_frames_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "det.jsonl"
    with DetectionLogWriter(path) as writer:
        with pytest.raises(ValidationFailed, match=r"detections\[0\]\.score: expected a number in \[0, 1\]"):
            writer.write("c", 1.0, 10, 10, [Detection((0, 0, 1, 1), "car", float("nan"))])
        with pytest.raises(ValidationFailed, match="width: expected a positive integer"):
            writer.write("c", 1.0, 0, 10, [])
        with pytest.raises(ValidationFailed, match="t: expected a finite number"):
            writer.write("c", float("inf"), 10, 10, [])
        assert writer.frames_written == 0
    assert path.read_text() == ""


def test_writer_appends_and_cuts_a_partial_line_left_by_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "det.jsonl"
    path.write_text(GOOD + "\n" + GOOD[:37])  # the process died in the middle of a line
    with caplog.at_level(logging.WARNING, logger="smartcity.sources.detlog"), DetectionLogWriter(path) as writer:
        writer.write("c2", 2.0, 640, 480, [])
    assert "cut a partial last line of 37 bytes" in caplog.text
    assert [(r.camera, r.t) for r in read_detection_log(path)] == [("c1", 1.5), ("c2", 2.0)]
    # append=False starts over
    with DetectionLogWriter(path, append=False) as writer:
        writer.write("c3", 3.0, 640, 480, [])
    assert [r.camera for r in read_detection_log(path)] == ["c3"]


def _det_line(**changes: object) -> str:
    frame = json.loads(GOOD)
    det = frame["detections"][0]
    for key, value in changes.items():
        if key.startswith("det_"):
            if value is _DROP:
                del det[key[4:]]
            else:
                det[key[4:]] = value
        elif value is _DROP:
            del frame[key]
        else:
            frame[key] = value
    return json.dumps(frame)


_DROP = object()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_det_line(det_box=[1, 2, 3]), "line 3: detections[0].box: expected 4 numbers"),
        (_det_line(det_box=[1, 2, "3", 4]), "line 3: detections[0].box: expected 4 numbers"),
        (_det_line(det_box=[10, 2, 3, 40]), "line 3: detections[0].box: expected x1 <= x2 and y1 <= y2"),
        (_det_line(det_score=1.5), "line 3: detections[0].score: expected a number in [0, 1]"),
        (_det_line(det_score=True), "line 3: detections[0].score: expected a number in [0, 1]"),
        (_det_line(det_class=""), "line 3: detections[0].class: expected a non-empty string"),
        (_det_line(det_class=_DROP), "line 3: detections[0].class: field required"),
        (_det_line(det_track_id=4), "line 3: detections[0].track_id: unknown field"),
        (_det_line(width=_DROP), "line 3: width: field required"),
        (_det_line(height=10.5), "line 3: height: expected a positive integer"),
        (_det_line(camera=""), "line 3: camera: expected a non-empty string"),
        (_det_line(t="soon"), "line 3: t: expected a finite number of seconds"),
        (_det_line(image="..."), "line 3: image: unknown field"),
        (_det_line(detections={}), "line 3: detections: expected a list, got an object"),
        (GOOD.replace('"t":1.5', '"t":NaN'), "line 3: (root): NaN is not a JSON number"),
        ("[1, 2]", "line 3: (root): expected an object, got a list"),
        ('{"camera": "c1",', "line 3: (root): not valid JSON"),
        ("", "line 3: (root): empty line"),
    ],
)
def test_reader_names_the_line_and_field_of_the_first_bad_record(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "det.jsonl"
    path.write_text(f"{GOOD}\n{GOOD}\n{line}\n{GOOD}\n")
    reader = read_detection_log(path)
    assert next(reader).camera == "c1"
    assert next(reader).t == 1.5
    with pytest.raises(DetectionLogError) as info:
        next(reader)
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.line == 3
    assert isinstance(info.value, ValidationFailed)


def test_reader_accepts_crlf_and_detection_lists_of_any_length(tmp_path: Path) -> None:
    path = tmp_path / "det.jsonl"
    many = json.loads(GOOD)
    many["detections"] = [{"box": [i, i, i + 5, i + 5], "class": "person", "score": 0.5} for i in range(50)]
    path.write_bytes((GOOD + "\r\n" + json.dumps(many) + "\r\n").encode())
    first, second = read_detection_log(path)
    assert len(first.detections) == 1 and len(second.detections) == 50
    assert second.detections[49].box == (49.0, 49.0, 54.0, 54.0)


def test_reader_of_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_detection_log(tmp_path / "nope.jsonl"))


# --- replay through the tracker and the rule engine -------------------------------------

W, H, FPS = 1280, 720, 5.0
T0 = 1_700_000_020.0  # 20 s before a minute boundary: crossings fall in two buckets


@dataclass(frozen=True)
class Vehicle:
    cls: str
    lane_y: float
    x0: float
    vx: float  # pixels per frame
    start: int
    frames: int

    def box(self, f: int) -> tuple[float, float, float, float]:
        x = self.x0 + self.vx * (f - self.start)
        return (x - 40.0, self.lane_y - 25.0, x + 40.0, self.lane_y + 25.0)


# A vertical line at x = 640 (0.5); "in" is rightwards. Four cars go right, three go left,
# one car turns back before the line, one person crosses (not a counted class), and a
# truck crosses right on the second camera, which has no rule.
SCENE = [
    Vehicle("car", 100, 200, 20, 0, 45),
    Vehicle("car", 200, 150, 25, 10, 40),
    Vehicle("car", 300, 100, 18, 30, 55),
    Vehicle("car", 400, 250, 22, 60, 40),
    Vehicle("car", 500, 1100, -20, 5, 45),
    Vehicle("car", 600, 1200, -24, 40, 40),
    Vehicle("car", 100, 1150, -19, 80, 50),  # same lane as the first car, much later
    Vehicle("car", 650, 300, 8, 20, 40),  # stops short: 300 + 8 * 39 = 612 < 640
    Vehicle("person", 350, 300, 10, 0, 80),
]
EXPECTED = {"in": 4, "out": 3}

RULES = """
- id: gate
  camera_id: north
  type: line_count
  classes: [car, truck]
  params:
    line: [[0.5, 0.0], [0.5, 1.0]]
    in_direction: [1, 0]
- id: gate-events
  camera_id: north
  type: line_count
  classes: [car]
  params:
    line: [[0.5, 0.0], [0.5, 1.0]]
    in_direction: right_is_wrong_here
"""


def _write_scene_log(path: Path, drop: float = 0.1) -> int:
    rng = np.random.default_rng(11)
    frames = 150
    with DetectionLogWriter(path, append=False) as writer:
        for f in range(frames):
            dets = []
            for v in SCENE:
                if v.start <= f < v.start + v.frames and rng.random() >= drop:
                    jitter = rng.normal(0.0, 1.0, 4)
                    box = tuple(float(c) for c in np.asarray(v.box(f)) + jitter)
                    dets.append(
                        Detection((box[0], box[1], box[2], box[3]), v.cls, float(rng.uniform(0.55, 0.95)))
                    )
            writer.write("north", T0 + f / FPS, W, H, dets)
            truck = Vehicle("truck", 360, 300, 30, 0, 40)
            writer.write(
                "south", T0 + f / FPS + 0.01, W, H, [Detection(truck.box(f), "truck", 0.9)] if f < 40 else []
            )
    return frames


def _rules_file(tmp_path: Path, events: bool = True) -> Path:
    path = tmp_path / "rules.yaml"
    text = RULES.replace("right_is_wrong_here", "[1, 0]\n    emit_events: true")
    if not events:
        text = text[: text.index("- id: gate-events")]
    path.write_text(text)
    return path


def test_replay_counts_line_crossings_per_direction_exactly(tmp_path: Path) -> None:
    from smartcity.replay import replay

    log_path = tmp_path / "det.jsonl"
    frames = _write_scene_log(log_path)
    events_out, counts_out = tmp_path / "out" / "events.jsonl", tmp_path / "out" / "counts.jsonl"
    stats = replay(_rules_file(tmp_path), log_path, events_out, counts_out)
    assert (stats.frames, stats.cameras) == (2 * frames, 2)

    buckets = [json.loads(line) for line in counts_out.read_text().splitlines()]
    assert stats.buckets == len(buckets)
    assert len({b["event_id"] for b in buckets}) == len(buckets)  # one final line per bucket
    assert {b["type"] for b in buckets} == {"count_bucket"}
    totals: dict[tuple[str, str, str], int] = {}
    for b in buckets:
        key = (b["rule_id"], b["object_class"], b["direction"])
        totals[key] = totals.get(key, 0) + b["n"]
    assert totals == {
        ("gate", "car", "in"): EXPECTED["in"],
        ("gate", "car", "out"): EXPECTED["out"],
        ("gate-events", "car", "in"): EXPECTED["in"],
        ("gate-events", "car", "out"): EXPECTED["out"],
    }
    # the crossings straddle a minute boundary: two buckets of 60 s
    assert {b["bucket_start"] for b in buckets} == {T0 - 40.0, T0 + 20.0}
    assert all(b["camera_id"] == "north" and b["bucket_s"] == 60 for b in buckets)

    events = [json.loads(line) for line in events_out.read_text().splitlines()]
    assert stats.events == len(events) == EXPECTED["in"] + EXPECTED["out"]
    assert {(e["type"], e["rule_id"], e["kind"], e["object_class"]) for e in events} == {
        ("rule_event", "gate-events", "crossing", "car")
    }
    assert sorted(e["payload"]["direction"] for e in events) == ["in"] * 4 + ["out"] * 3
    assert len({e["track_id"] for e in events}) == 7


def test_replay_is_deterministic_and_outputs_are_replaced_whole(tmp_path: Path) -> None:
    from smartcity.replay import replay

    log_path = tmp_path / "det.jsonl"
    _write_scene_log(log_path)
    rules = _rules_file(tmp_path, events=False)
    events_out, counts_out = tmp_path / "events.jsonl", tmp_path / "counts.jsonl"
    replay(rules, log_path, events_out, counts_out)
    first = counts_out.read_text()
    replay(rules, log_path, events_out, counts_out)
    assert counts_out.read_text() == first and first
    assert events_out.read_text() == ""
    # a log that breaks half way leaves the previous outputs untouched and no temp files
    lines = log_path.read_text().splitlines()
    lines[100] = lines[100].replace('"class":"car"', '"class":""', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DetectionLogError, match=r"^line 101: detections\[\d+\]\.class: expected a non-empty string"
    ):
        replay(rules, bad, events_out, counts_out)
    assert counts_out.read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["det.jsonl", "bad.jsonl", "rules.yaml", "events.jsonl", "counts.jsonl"]
    )


def test_main_replay_prints_stats_and_reports_bad_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartcity.replay import main_replay

    log_path = tmp_path / "det.jsonl"
    _write_scene_log(log_path, drop=0.0)
    rules = _rules_file(tmp_path, events=False)
    assert main_replay(["--rules", str(rules), str(log_path)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["frames"] == 300 and out["cameras"] == 2 and out["events"] == 0
    assert out["counts_out"] == str(tmp_path / "det.counts.jsonl")
    counted = [json.loads(line) for line in (tmp_path / "det.counts.jsonl").read_text().splitlines()]
    assert sum(b["n"] for b in counted if b["direction"] == "in") == EXPECTED["in"]
    assert (tmp_path / "det.events.jsonl").read_text() == ""

    custom = tmp_path / "elsewhere" / "c.jsonl"
    assert main_replay(["--rules", str(rules), str(log_path), "--counts-out", str(custom)]) == 0
    assert custom.read_text() == (tmp_path / "det.counts.jsonl").read_text()
    capsys.readouterr()

    log_path.write_text(GOOD + "\n" + GOOD.replace('"width":640', '"width":-1') + "\n")
    assert main_replay(["--rules", str(rules), str(log_path)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {log_path}: line 2: width: expected a positive integer"

    rules.write_text("- id: x\n  camera_id: north\n  type: no_such_rule\n")
    assert main_replay(["--rules", str(rules), str(log_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {rules}:") and "unknown rule type 'no_such_rule'" in err

    assert main_replay(["--rules", str(tmp_path / "missing.yaml"), str(log_path)]) == 1
    assert "missing.yaml" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main_replay([str(log_path)])  # --rules is required
    assert exit_info.value.code == 2


def test_replay_keeps_a_crossing_confirmed_after_its_minute_was_flushed(tmp_path: Path) -> None:
    """A car that crosses in the last fraction of a minute is mature (min_track_age frames) only
    after replay has flushed that minute: its crossing, interpolated back into the minute, must
    add to that minute's total, not replace it."""
    from smartcity.replay import replay

    boundary = 1_700_000_040.0  # a minute boundary
    assert boundary % 60 == 0
    step = 1.0 / FPS
    frames: dict[float, list[tuple[float, float]]] = {}
    # car A crosses the vertical line x = 640 mid-minute, long before the boundary
    for f in range(30):
        frames.setdefault(round(boundary - 30.0 + f * step, 6), []).append((400.0 + 20.0 * f, 150.0))
    # car B (another lane) is first seen one frame before the boundary, well left of the line, and well right
    # of it on the boundary frame (crossed half way between: boundary - 0.1 s); its third
    # sighting, after the boundary, is the first at which it is old enough to count
    for f in range(12):
        frames.setdefault(round(boundary - step + f * step, 6), []).append((580.0 + 120.0 * f, 500.0))
    log_path = tmp_path / "late.jsonl"
    with DetectionLogWriter(log_path, append=False) as writer:
        for t in sorted(frames):
            dets = [Detection((x - 200.0, y - 60.0, x + 200.0, y + 60.0), "car", 0.9) for x, y in frames[t]]
            writer.write("north", t, W, H, dets)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- id: gate\n  camera_id: north\n  type: line_count\n  classes: [car]\n"
        "  params: {line: [[0.5, 0.0], [0.5, 1.0]], in_direction: [1, 0], min_track_age: 3}\n"
    )
    counts_out = tmp_path / "counts.jsonl"
    replay(rules, log_path, tmp_path / "events.jsonl", counts_out)
    buckets = [json.loads(line) for line in counts_out.read_text().splitlines()]
    assert [(b["bucket_start"], b["direction"], b["n"]) for b in buckets] == [(boundary - 60.0, "in", 2)]


def test_main_replay_tracks_with_the_server_configs_tracker_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartcity.replay import main_replay

    log_path = tmp_path / "det.jsonl"
    _write_scene_log(log_path, drop=0.0)
    rules = _rules_file(tmp_path, events=False)

    def run(*extra: str) -> dict[str, int]:
        assert main_replay(["--rules", str(rules), str(log_path), *extra]) == 0
        out: dict[str, int] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        return out

    plain = run()
    assert plain["confirmed_tracks"] > 0
    # the server would confirm no track that is not seen on 500 consecutive frames
    config = tmp_path / "server.yaml"
    config.write_text("analysis:\n  tracker:\n    min_hits: 500\n")
    assert run("--config", str(config))["confirmed_tracks"] == 0
    # and start none from a detection under 0.99: nothing is tracked, nothing is counted
    config.write_text("analysis:\n  tracker:\n    new_track_score: 0.99\n")
    assert run("-c", str(config))["confirmed_tracks"] == 0
    assert (tmp_path / "det.counts.jsonl").read_text() == ""

    # a bad configuration is reported as check-config reports it, and nothing is replayed
    config.write_text("analysis:\n  tracker:\n    min_hits: 0\n    bogus: 1\n")
    assert main_replay(["--rules", str(rules), str(log_path), "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"{config}: 2 error(s)"
    assert any(line.startswith("analysis.tracker.min_hits:") for line in err)
    assert any(line.startswith("analysis.tracker.bogus:") for line in err)
    assert (tmp_path / "det.counts.jsonl").read_text() == ""
