"""The per-camera pipeline in-process (no Ray): a dwell rule fires on a parked car and its
event carries a JPEG snapshot with the zone drawn and the person next to it pixelated."""

from __future__ import annotations

import io

import av
import numpy as np
from testkit import TexturedSource, parked_car_rule, run_pipeline_until

from smartcity.actors.pipeline import CameraPipeline
from smartcity.core.events import Event, RuleEvent
from smartcity.core.vision import Detection

W, H = 320, 240
CAR = (40.0, 120.0, 120.0, 180.0)
PERSON = (200.0, 60.0, 240.0, 200.0)


async def test_dwell_event_with_pixelated_evidence() -> None:
    emitted: list[Event] = []
    evidence: dict[str, bytes] = {}

    def emit(events: list[Event], attachments: dict[str, bytes]) -> None:
        emitted.extend(events)
        evidence.update(attachments)

    async def infer(image: np.ndarray) -> list[Detection]:
        return [Detection(CAR, "car", 0.9), Detection(PERSON, "person", 0.8)]

    source = TexturedSource(n=30)  # 6 s of video
    pipe = CameraPipeline("cam", source, infer, emit, rules=[parked_car_rule()], idle_sleep_s=0.001)
    await run_pipeline_until(pipe, 30, poll_s=0.01)

    dwell = [e for e in emitted if isinstance(e, RuleEvent) and e.kind == "dwell"]
    assert len(dwell) == 1
    assert dwell[0].object_class == "car"
    jpeg = evidence[dwell[0].event_id]
    with av.open(io.BytesIO(jpeg)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert img.shape == (H, W, 3)
    x1, y1, x2, y2 = (int(v) for v in PERSON)
    person_std = img[y1 + 10 : y2 - 10, x1 + 5 : x2 - 5].astype(float).std()
    car_std = img[int(CAR[1]) + 5 : int(CAR[3]) - 5, int(CAR[0]) + 5 : int(CAR[2]) - 5].astype(float).std()
    # random texture survives where nothing is private; the person is reduced to blocks
    assert car_std > 40
    assert person_std < car_std * 0.6
    assert pipe.stats.inferred + pipe.stats.skipped == 30
