"""The per-camera pipeline on frames scaled in the decoder (no Ray): the detector sees the small
picture, tracks and rules get boxes in the camera's pixels, and what operators see (evidence,
the private view) is the full picture, pixelated where the people are."""

from __future__ import annotations

import io

import av
import numpy as np
from testkit import run_pipeline_until

from smartcity.actors.pipeline import CameraPipeline
from smartcity.analytics import validate_rule
from smartcity.core.events import Event, RuleEvent
from smartcity.core.vision import Detection
from smartcity.privacy import render_evidence
from smartcity.sources.types import Frame

W, H = 640, 360  # the camera's picture
SW, SH = 320, 180  # the analysis picture the decoder makes
CAR = (80.0, 240.0, 240.0, 330.0)
PERSON = (400.0, 100.0, 480.0, 340.0)


class ScaledSource:
    """Textured frames at 5 fps of simulated time, handed out scaled, with their full picture."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(1)
        self.full = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        self.small = np.ascontiguousarray(self.full[::2, ::2])
        self.n = n
        self.i = 0
        self.full_calls = 0

    def _full(self) -> np.ndarray:
        self.full_calls += 1
        return self.full

    def take_for_analysis(self) -> Frame | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return Frame("cam", self.i, 1000.0 + self.i * 0.2, self.small, W, H, full=self._full)


async def test_scaled_frames_give_full_frame_boxes_and_full_pixelated_evidence() -> None:
    emitted: list[Event] = []
    evidence: dict[str, bytes] = {}
    seen_shapes: set[tuple[int, ...]] = set()

    def emit(events: list[Event], attachments: dict[str, bytes]) -> None:
        emitted.extend(events)
        evidence.update(attachments)

    async def infer(image: np.ndarray) -> list[Detection]:
        # a detector answers in the pixels of the picture it was given
        seen_shapes.add(image.shape)
        s = image.shape[1] / W
        return [
            Detection(tuple(v * s for v in CAR), "car", 0.9),  # type: ignore[arg-type]
            Detection(tuple(v * s for v in PERSON), "person", 0.8),  # type: ignore[arg-type]
        ]

    rule = validate_rule(
        {
            "id": "park-1",
            "camera_id": "cam",
            "type": "dwell",
            "classes": ["car"],
            "params": {"zone": [[0.05, 0.55], [0.45, 0.55], [0.45, 0.98], [0.05, 0.98]], "threshold_s": 2.0},
        }
    )
    source = ScaledSource(n=30)  # 6 s of video
    pipe = CameraPipeline("cam", source, infer, emit, rules=[rule], idle_sleep_s=0.001)
    await run_pipeline_until(pipe, 30, poll_s=0.01)

    assert seen_shapes == {(SH, SW, 3)}  # the detector only ever saw the scaled picture
    boxes = {t.cls: t.box for t in pipe.latest_tracks}
    assert np.allclose(boxes["car"], CAR, atol=0.5) and np.allclose(boxes["person"], PERSON, atol=0.5)
    assert pipe.latest_view is not None
    assert {d.cls: d.box for d in pipe.latest_view[1]} == {"car": CAR, "person": PERSON}

    dwell = [e for e in emitted if isinstance(e, RuleEvent) and e.kind == "dwell"]
    assert len(dwell) == 1
    # full pictures were made for the one snapshot only, not for every analysed frame
    assert source.full_calls == 1
    with av.open(io.BytesIO(evidence[dwell[0].event_id])) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert img.shape == (H, W, 3)
    _assert_person_hidden(img)

    # the private view: the analysed frame at full size with the mask made on the small picture
    mask = pipe.latest_mask
    assert mask is not None and (mask.width, mask.height) == (SW, SH)
    frame = pipe.latest_view[0]
    jpeg = render_evidence(frame.full_image(), [], mask)
    with av.open(io.BytesIO(jpeg)) as c:
        view = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert view.shape == (H, W, 3)
    _assert_person_hidden(view)


def _assert_person_hidden(img: np.ndarray) -> None:
    x1, y1, x2, y2 = (int(v) for v in PERSON)
    person_std = img[y1 + 10 : y2 - 10, x1 + 5 : x2 - 5].astype(float).std()
    cx1, cy1, cx2, cy2 = (int(v) for v in CAR)
    car_std = img[cy1 + 5 : cy2 - 5, cx1 + 5 : cx2 - 5].astype(float).std()
    # random texture survives where nothing is private; the person is reduced to blocks
    assert car_std > 40
    assert person_std < car_std * 0.6


def test_only_rules_that_read_pixels_ask_for_full_frames() -> None:
    from smartcity.analytics import RULE_TYPES, reads_pixels

    assert {name for name, cls in RULE_TYPES.items() if cls.reads_pixels} == {"red_light", "fire", "smoke"}
    dwell = validate_rule(
        {"id": "d", "camera_id": "cam", "type": "dwell", "params": {"zone": [[0, 0], [1, 0], [1, 1]], "threshold_s": 2.0}}
    )
    assert reads_pixels([dwell]) is False
    assert reads_pixels([]) is False
