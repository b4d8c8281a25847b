"""What the motion gate saves and what it costs, on vtest.avi, in one process (no Ray).

Usage: python bench/gating.py [--quick] [--frames N] [--video FILE]

The clip (vtest.avi, or your own camera's recording with --video: every 2nd frame is analysed)
is decoded once and the default detector (YOLOv3-tiny) runs once on every analysed frame. The
real `CameraPipeline` (gate -> tracker -> rules) then replays those frames with three
motion-gate settings, serving detections from that cache:

  every_frame   gate off: the detector on every frame (the reference)
  default       the shipped gate: frames where nothing moved reuse the last detections
  track_2       `track_max: 2`: also up to 2 frames in a row on the tracker's predictions
                while only tracked objects move

For each setting: the fraction of frames sent to the detector, the line crossings counted
by four counting lines (by line, class and direction) and their total absolute difference
from the reference, and the confirmed person tracks (fragmentation); the same for the float32
detector (`float32_detector`, gate off), to show what bfloat16 changes. Then the same pipeline
runs with the detector for real, one frame at a time, under `every_frame` and `track_2`:
`fps` of each and `speedup` = track_2 / every_frame, measured in this run (null when the gate
left no frame to the tracker: the two runs then do the same work).

Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import numpy as np  # noqa: E402

from smartcity.actors.motion import MotionConfig  # noqa: E402
from smartcity.actors.pipeline import CameraPipeline  # noqa: E402
from smartcity.analytics import validate_rule  # noqa: E402
from smartcity.core.events import Event, RuleEvent  # noqa: E402
from smartcity.core.vision import Detection  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402
from smartcity.models.registry import create_detector  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402
from smartcity.sources.types import Frame  # noqa: E402

SETTINGS: dict[str, dict[str, Any]] = {
    "every_frame": {"enabled": False},
    "default": {},
    "track_2": {"track_max": 2},
}

LINES = {
    "x30": [[0.3, 0.0], [0.3, 1.0]],
    "x50": [[0.5, 0.0], [0.5, 1.0]],
    "x70": [[0.7, 0.0], [0.7, 1.0]],
    "y50": [[0.0, 0.5], [1.0, 0.5]],
}


def log(msg: str) -> None:
    print(msg, flush=True)


class ListSource:
    def __init__(self, frames: list[Frame]) -> None:
        self._frames = iter(frames)

    def take_for_analysis(self) -> Frame | None:
        return next(self._frames, None)


def decode(video: Path, count: int) -> list[Frame]:
    """Every 2nd frame of the 10 fps clip (5 analysed fps), timestamps from the frame index."""
    out: list[Frame] = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 2:
                continue
            image = frame.to_ndarray(format="rgb24")
            out.append(Frame("vtest", i, i / 10.0, image, image.shape[1], image.shape[0]))
            if len(out) >= count:
                break
    return out


def rules() -> list[Any]:
    return [
        validate_rule(
            {
                "id": name,
                "camera_id": "vtest",
                "type": "line_count",
                "classes": ["person"],
                "params": {"line": line, "in_direction": "left", "emit_events": True},
            }
        )
        for name, line in LINES.items()
    ]


async def replay(frames: list[Frame], infer: Callable[[np.ndarray], list[Detection]], motion: dict[str, Any]) -> dict[str, Any]:
    events: list[Event] = []

    async def detect(image: np.ndarray) -> list[Detection]:
        await asyncio.sleep(0)
        return infer(image)

    pipe = CameraPipeline(
        "vtest",
        ListSource(frames),
        detect,
        lambda evs, _: events.extend(evs),
        rules=rules(),
        motion=MotionConfig.model_validate(motion),
        max_inflight=1,
        summary_interval_s=1e9,
        counts_flush_s=1e9,
        idle_sleep_s=0.001,
    )
    persons: set[int] = set()
    t0 = time.perf_counter()
    task = asyncio.get_running_loop().create_task(pipe.run())
    while pipe.stats.analysed < len(frames):
        await asyncio.sleep(0.001)
        persons.update(t.track_id for t in pipe.latest_tracks if t.confirmed and t.cls == "person")
    elapsed = time.perf_counter() - t0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    crossings = Counter(
        f"{e.rule_id}/{e.object_class}/{e.payload.get('direction')}"
        for e in events
        if isinstance(e, RuleEvent) and e.kind == "crossing"
    )
    return {
        "inferred_fraction": round(pipe.stats.inferred / len(frames), 3),
        "reused": pipe.stats.skipped,
        "tracked": pipe.stats.tracked,
        "crossings": dict(sorted(crossings.items())),
        "person_tracks": len(persons),
        "fps": round(len(frames) / elapsed, 2),
    }


def count_error(ref: dict[str, int], got: dict[str, int]) -> int:
    return sum(abs(ref.get(k, 0) - got.get(k, 0)) for k in set(ref) | set(got))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer frames (under a minute here)")
    p.add_argument("--frames", type=int, default=0, help="analysed frames (default 200 quick, 397 full)")
    p.add_argument("--video", type=Path, default=None, help="a recording to use instead of vtest.avi")
    args = p.parse_args(argv)
    count = args.frames or (200 if args.quick else 397)
    install_default_model(default_model_dir())
    detector = create_detector({"type": "darknet", "device": "cpu", "num_threads": 1})
    frames = decode((args.video or demo_video_path()).resolve(), count)
    log(f"{len(frames)} frames of {frames[0].width}x{frames[0].height}")

    cache: dict[int, list[Detection]] = {}
    t0 = time.perf_counter()
    for f in frames:
        cache[id(f.image)] = detector.detect([f.image])[0]
    log(f"detector on every frame: {len(frames) / (time.perf_counter() - t0):.1f} fps")

    result: dict[str, Any] = {"frames": len(frames), "settings": {}}
    for name, motion in SETTINGS.items():
        r = asyncio.run(replay(frames, lambda image: cache[id(image)], motion))
        r.pop("fps")
        result["settings"][name] = r
        log(f"{name}: {r}")
    ref = result["settings"]["every_frame"]["crossings"]
    for r in result["settings"].values():
        r["count_error"] = count_error(ref, r["crossings"])
    result["reference_crossings"] = sum(ref.values())

    # the float32 detector instead of the default one (bfloat16 on CPUs with AMX), gate off
    fp32 = create_detector({"type": "darknet", "device": "cpu", "num_threads": 1, "bf16": False})
    cache32 = {id(f.image): fp32.detect([f.image])[0] for f in frames}
    r32 = asyncio.run(replay(frames, lambda image: cache32[id(image)], SETTINGS["every_frame"]))
    r32.pop("fps")
    r32["count_error"] = count_error(ref, r32["crossings"])
    result["float32_detector"] = r32
    log(f"float32 detector: {r32}")

    # the same path with the detector for real (in this process, one frame at a time)
    timed = frames[: min(len(frames), 60 if args.quick else 150)]
    live: dict[str, float] = {}
    for _ in range(2):  # alternate, best of two: the first run of each also warms up
        for name in ("every_frame", "track_2"):
            fps = asyncio.run(replay(timed, lambda image: detector.detect([image])[0], SETTINGS[name]))["fps"]
            live[name] = max(live.get(name, 0.0), fps)
    result["fps"] = live
    # with no frame left to the tracker the two runs do the same work: their ratio is noise
    tracked = result["settings"]["track_2"]["tracked"]
    result["speedup"] = round(live["track_2"] / live["every_frame"], 2) if tracked else None
    log(f"real detector: {live}")
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
