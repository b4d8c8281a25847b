"""Count buckets of the per-camera pipeline (no Ray): every crossing is emitted once in its own
minute, and a camera that runs for a long time keeps only its last minutes of buckets."""

from __future__ import annotations

import numpy as np
from testkit import run_pipeline_until

from smartcity.actors.motion import MotionConfig
from smartcity.actors.pipeline import CameraPipeline
from smartcity.analytics import validate_rule
from smartcity.analytics.counts import merge_parts
from smartcity.core.events import CountBucket, Event
from smartcity.core.vision import Detection
from smartcity.sources.types import Frame

W, H = 640, 360
T0 = 1_800_000_000.0  # a minute boundary
LEG = 44  # frames from one end of the walk to the other


def walker_x(i: int) -> float:
    """Back and forth between x = 100 and x = 540, 10 pixels a frame: across x = 320 every LEG frames."""
    k = i % (2 * LEG)
    return 100.0 + 10.0 * (k if k <= LEG else 2 * LEG - k)


class Clock:
    """One frame a second (so minutes go by fast), for `n` frames."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0
        self.image = np.zeros((H, W, 3), dtype=np.uint8)

    def take_for_analysis(self) -> Frame | None:
        if self.i >= self.n:
            return None
        frame = Frame("cam", self.i, T0 + self.i, self.image, W, H)
        self.i += 1
        return frame


async def test_every_crossing_is_counted_in_its_minute_and_old_minutes_are_let_go() -> None:
    n = 8 * 60  # eight minutes
    source = Clock(n)
    calls = 0

    async def infer(image: np.ndarray) -> list[Detection]:
        nonlocal calls
        x = walker_x(calls)  # frames are detected in order (max_inflight=1)
        calls += 1
        return [Detection((x - 20.0, 150.0, x + 20.0, 250.0), "person", 0.9)]

    emitted: list[CountBucket] = []

    def emit(events: list[Event], attachments: dict[str, bytes]) -> None:
        emitted.extend(e for e in events if isinstance(e, CountBucket))

    rule = validate_rule(
        {"id": "gate", "camera_id": "cam", "type": "line_count",
         "params": {"line": [[0.5, 0.0], [0.5, 1.0]], "in_direction": [1, 0]}}
    )  # fmt: skip
    pipe = CameraPipeline(
        "cam", source, infer, emit, rules=[rule], motion=MotionConfig(enabled=False), max_inflight=1,
        counts_flush_s=1e-6, idle_sleep_s=0.001,
    )  # fmt: skip
    await run_pipeline_until(pipe, n)
    held = pipe.engine.counts.snapshot()
    pipe.flush_counts()  # what closing the camera does

    # the walker is on the line x = 320 in the middle of each leg (never within 2 s of a minute
    # boundary), going right (in) then left (out)
    crossings: dict[tuple[float, str], int] = {}
    for i in range(1, n - 1):
        if walker_x(i) == 320.0:
            assert 2 <= i % 60 <= 58
            key = (T0 + 60.0 * (i // 60), "in" if walker_x(i + 1) > walker_x(i) else "out")
            crossings[key] = crossings.get(key, 0) + 1
    assert sum(crossings.values()) == 11
    counted = {(b.bucket_start, b.direction): b.n for b in merge_parts(emitted)}
    assert counted == crossings
    # only the last two minutes were still held when the camera stopped
    assert held and min(b.bucket_start for b in held) >= T0 + n - 2 * 60
