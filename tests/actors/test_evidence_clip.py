"""Evidence clips next to the pixels: the frame ring stays within its seconds and bytes, a rule
event of a clip kind gets a WebM clip of the seconds before and after it, every person in it
pixelated (a frame without a trusted mask hidden whole), that PyAV decodes back frame for frame;
a clip that cannot be pixelated is not made."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av
import numpy as np
import pytest
from testkit import TexturedSource, parked_car_rule

from smartcity.actors.clip import FrameRing, clip_event_id
from smartcity.actors.pipeline import CameraPipeline
from smartcity.core.events import Event, EvidenceClip, RuleEvent
from smartcity.core.privacy_config import ClipConfig, PrivacyConfig
from smartcity.core.privacy_mask import PrivacyMask
from smartcity.core.vision import Detection
from smartcity.privacy import CameraPrivacy
from smartcity.privacy.clip import ClipFrame, keep_frame, render_clip

W, H = 320, 240
CAR = (40.0, 120.0, 120.0, 180.0)
PERSON = (200.0, 60.0, 240.0, 200.0)


def _texture() -> np.ndarray:
    return TexturedSource(1, W, H).image


def _decode(data: bytes) -> tuple[list[np.ndarray], list[float]]:
    with av.open(io.BytesIO(data)) as c:
        assert c.streams.video[0].codec_context.name == "vp8"
        frames = list(c.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [float(f.time or 0.0) for f in frames]


def _std(img: np.ndarray, box: tuple[float, float, float, float], inset: int = 6) -> float:
    x1, y1, x2, y2 = (int(v) for v in box)
    return float(img[y1 + inset : y2 - inset, x1 + inset : x2 - inset].astype(float).std())


def test_ring_keeps_its_seconds_and_its_bytes() -> None:
    ring = FrameRing(keep_s=2.0, max_bytes=10_000)
    for i in range(50):
        ring.push(ClipFrame(i * 0.1, b"x" * 100, None))
    assert len(ring) == 21 and ring.bytes == 2100  # 2 s at 10 fps, both ends included
    for i in range(50, 100):
        ring.push(ClipFrame(i * 0.1, b"x" * 1000, None))
    assert ring.bytes <= 10_000 and len(ring) == 10 and ring.dropped_for_bytes > 0
    assert [f.t for f in ring.between(9.5, 9.8)] == pytest.approx([9.5, 9.6, 9.7, 9.8])


def test_clip_pixelates_each_frame_with_its_own_mask_and_plays_back() -> None:
    image = _texture()
    mask = PrivacyMask.from_boxes([PERSON], W, H)
    frames = [keep_frame(image, 100.0 + i * 0.2, mask if i != 3 else None, width=W, quality=4) for i in range(10)]
    pictures, times = _decode(render_clip(frames))
    assert len(pictures) == 10 and pictures[0].shape == (H, W, 3)
    assert times[0] == pytest.approx(0.0) and times[-1] == pytest.approx(1.8, abs=0.01)
    for i, pic in enumerate(pictures):
        raw_person, clip_person = _std(image, PERSON), _std(pic, PERSON)
        assert clip_person < 0.25 * raw_person, i  # people regions differ from raw: blocks
        if i == 3:  # no trusted mask: the whole frame hidden
            assert _std(pic, CAR) < 0.1 * _std(image, CAR)
        else:
            assert _std(pic, CAR) > 0.5 * _std(image, CAR)  # the rest keeps its texture (lossy VP8)


def test_a_clip_that_cannot_be_pixelated_is_not_made() -> None:
    good = keep_frame(_texture(), 1.0, None, width=W, quality=4)
    with pytest.raises(ValueError):
        render_clip([good, ClipFrame(1.2, b"not a jpeg", None)])
    with pytest.raises(ValueError):
        render_clip([])


async def test_rule_event_of_a_clip_kind_gets_a_pixelated_clip_before_and_after() -> None:
    emitted: list[Event] = []
    attachments: dict[str, bytes] = {}

    def emit(events: list[Event], files: dict[str, bytes]) -> None:
        emitted.extend(events)
        attachments.update(files)

    async def infer(image: np.ndarray) -> list[Detection]:
        return [Detection(CAR, "car", 0.9), Detection(PERSON, "person", 0.8)]

    clip_cfg = ClipConfig(kinds=("dwell",), before_s=2.0, after_s=2.0, fps=5.0, width=W)
    privacy = CameraPrivacy(PrivacyConfig(evidence_clip=clip_cfg))
    source = TexturedSource(n=40)
    pipe = CameraPipeline("cam", source, infer, emit, rules=[parked_car_rule()], idle_sleep_s=0.001, privacy=privacy)
    task = asyncio.get_running_loop().create_task(pipe.run())
    try:
        async with asyncio.timeout(60):
            while pipe.stats.clips_sent + pipe.stats.clips_failed == 0:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pipe.stats.clips_failed == 0
    [dwell] = [e for e in emitted if isinstance(e, RuleEvent) and e.kind == "dwell"]
    [clip] = [e for e in emitted if isinstance(e, EvidenceClip)]
    assert clip.of_event_id == dwell.event_id and clip.event_id == clip_event_id(dwell.event_id)
    assert clip.t == dwell.t and clip.camera_id == "cam"
    assert clip.start_t == pytest.approx(dwell.t - 2.0, abs=0.21) and clip.end_t == pytest.approx(dwell.t + 2.0, abs=0.21)
    pictures, times = _decode(attachments[clip.event_id])
    assert len(pictures) == clip.frames == 21  # 4 s at 5 fps, both ends included
    assert times[-1] == pytest.approx(clip.end_t - clip.start_t, abs=0.01)
    for pic in pictures:
        assert _std(pic, PERSON) < 0.5 * _std(source.image, PERSON)


def test_readme_clip_config_validates(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("plays the **evidence clip**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "clip.yaml").write_text(block)
    clip = load_settings(tmp_path / "clip.yaml", environ={}).privacy.evidence_clip
    assert clip == ClipConfig()  # the README shows the defaults
    with pytest.raises(ValueError, match="before_s"):
        ClipConfig(before_s=-1)
