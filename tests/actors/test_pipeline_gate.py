"""The motion gate in the per-camera pipeline (no Ray): with `track_max`, frames where only a
tracked object moves are analysed on the tracker's predictions, the detector runs again on
schedule, and what operators see pixelated follows the predicted boxes."""

from __future__ import annotations

import numpy as np
from testkit import run_pipeline_until

from smartcity.actors.motion import MotionConfig
from smartcity.actors.pipeline import CameraPipeline
from smartcity.core.events import Event
from smartcity.core.vision import Detection
from smartcity.sources.types import Frame

W, H = 320, 240
STEP = 6.0  # pixels per analysed frame


def person_box(i: int) -> tuple[float, float, float, float]:
    x = 20.0 + STEP * i
    return (x, 80.0, x + 30.0, 170.0)


class Walker:
    """A bright person-sized block walking right over a textured background, 5 fps."""

    def __init__(self, n: int) -> None:
        self.background = np.random.default_rng(2).integers(0, 120, (H, W, 3), dtype=np.uint8)
        self.n = n
        self.i = 0

    def take_for_analysis(self) -> Frame | None:
        if self.i >= self.n:
            return None
        image = self.background.copy()
        x1, y1, x2, y2 = (int(v) for v in person_box(self.i))
        image[y1:y2, x1:x2] = 240
        frame = Frame("cam", self.i, 100.0 + self.i * 0.2, image, W, H)
        self.i += 1
        return frame


class Probe(CameraPipeline):
    """Notes, after each analysed frame, the box that snapshots and live views pixelate."""

    shown: list[tuple[int, tuple[float, ...]]]

    def _analyse(self, frame: Frame, detected: list[Detection] | None) -> None:  # type: ignore[override]
        super()._analyse(frame, detected)
        assert self.latest_view is not None
        self.shown.append((frame.index, self.latest_view[1][0].box))


async def run(n: int, motion: MotionConfig) -> tuple[CameraPipeline, list[tuple[int, tuple[float, ...]]]]:
    source = Walker(n)
    detected = 0

    async def infer(image: np.ndarray) -> list[Detection]:
        nonlocal detected
        # where the block is in this image
        cols = np.flatnonzero(image[120, :, 0] == 240)
        detected += 1
        x = float(cols[0])
        return [Detection((x, 80.0, x + 30.0, 170.0), "person", 0.9)]

    def emit(events: list[Event], attachments: dict[str, bytes]) -> None:
        pass

    pipe = Probe("cam", source, infer, emit, motion=motion, max_inflight=1, idle_sleep_s=0.001)
    pipe.shown = []
    await run_pipeline_until(pipe, n)
    assert detected == pipe.stats.inferred
    return pipe, pipe.shown


async def test_tracked_walker_spares_the_detector_and_stays_pixelated() -> None:
    n = 30
    pipe, shown = await run(n, MotionConfig(every_k=100, track_max=2))
    # the first frames confirm the track (every frame detected); then one frame in three
    assert pipe.stats.tracked >= 15, pipe.stats
    assert pipe.stats.inferred + pipe.stats.tracked + pipe.stats.skipped == n
    assert pipe.stats.inferred <= 14
    # one track all along, and the box hidden on every frame covers the walker of that frame
    assert {t.track_id for t in pipe.latest_tracks} == {1}
    assert [i for i, _ in shown] == list(range(n))
    for i, box in shown[10:]:
        true = person_box(i)
        overlap = max(0.0, min(box[2], true[2]) - max(box[0], true[0])) / (true[2] - true[0])
        assert overlap > 0.8, (i, box, true)


async def test_without_track_max_every_moving_frame_is_detected() -> None:
    pipe, _ = await run(12, MotionConfig(every_k=100))
    assert pipe.stats.inferred == 12 and pipe.stats.tracked == 0
