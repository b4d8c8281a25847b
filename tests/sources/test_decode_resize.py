"""Analysis frames decoded straight to the detector's input size: the letterbox arithmetic the
source and the detectors share, and a source that resizes while its full pictures stay available."""

from __future__ import annotations

import gc
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from source_helpers import wait_until

from smartcity.core.vision import letterbox_fit
from smartcity.models.ops import letterbox, letterbox_params, unletterbox
from smartcity.sources import CameraSource, SourceOptions, read_frame_counter

Clip = Callable[..., Path]

SIZES = [(1280, 720), (1920, 1080), (768, 576), (640, 480), (1000, 333), (333, 1000), (2592, 1944)]


@pytest.mark.parametrize("size", [(416, 416), (320, 416), (640, 640)])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_boxes_on_a_decoder_scaled_frame_map_back_exactly(width: int, height: int, size: tuple[int, int]) -> None:
    fit_w, fit_h = letterbox_fit(width, height, size)
    full, small = letterbox_params(width, height, size), letterbox_params(fit_w, fit_h, size)
    # the scaled frame fills the network input at the same pixels, with no second resize
    assert (small.scale_x, small.scale_y) == (1.0, 1.0)
    assert (small.pad_x, small.pad_y) == (full.pad_x, full.pad_y)
    rng = np.random.default_rng(width * height)
    xy = rng.uniform(0, max(size), (50, 2, 2))
    boxes = torch.tensor(np.concatenate([xy.min(1), xy.max(1)], 1), dtype=torch.float64)
    # a box the network finds, mapped to the camera's picture: through the full frame's letterbox,
    # or through the scaled frame's and then by the decoder's scale (what the pipeline does)
    direct = unletterbox(boxes, full)
    scaled = unletterbox(boxes, small) * torch.tensor([width / fit_w, height / fit_h] * 2, dtype=torch.float64)
    assert torch.allclose(direct, scaled, atol=1e-6)


def test_letterbox_fit_rejects_empty_sizes() -> None:
    with pytest.raises(ValueError, match="cannot fit 0x720"):
        letterbox_fit(0, 720, (416, 416))


def _played_once(clip: Clip, sources: list[CameraSource], name: str, width: int, height: int) -> CameraSource:
    """A source that resizes for analysis to 416x416, after it played a second of `width`x`height`
    at 10 fps once."""
    path = clip(f"{name}_10fps.mp4", width=width, height=height, fps=10, seconds=1)
    options = SourceOptions(realtime=False, loop=False)
    src = CameraSource(name, str(path), analysis_fps=10, options=options, analysis_size=(416, 416))
    sources.append(src)
    src.start()
    assert wait_until(lambda: not src.running, 20), "a file played once must end its thread"
    return src


def test_analysis_frames_come_scaled_and_full_pictures_on_demand(clip: Clip, sources: list[CameraSource]) -> None:
    src = _played_once(clip, sources, "hd", 1280, 720)
    frame = src.take_for_analysis()
    assert frame is not None and frame.index == 9
    assert frame.image.shape == (234, 416, 3) and frame.image.dtype == np.uint8
    assert (frame.width, frame.height) == (1280, 720) and frame.scaled
    assert frame.scale == pytest.approx((1280 / 416, 720 / 234))
    assert frame.image.flags.writeable is False
    full = frame.full_image()
    assert full.shape == (720, 1280, 3)
    assert read_frame_counter(full) == 9  # the same picture, at full size
    latest = src.latest()
    assert latest is not None and latest.image is full  # converted once, shared with the live view
    # the detector's input made from the scaled frame is the one it makes from the full frame
    # (both antialiased: swscale's area filter in the decoder, torch's in the detector)
    from_small, _ = letterbox([frame.image], (416, 416), fill=0)
    from_full, _ = letterbox([full], (416, 416), fill=0)
    assert float((from_small - from_full).abs().mean()) * 255 < 2.0


def test_pictures_within_the_input_are_not_scaled(clip: Clip, sources: list[CameraSource]) -> None:
    src = _played_once(clip, sources, "qvga", 320, 240)
    frame = src.take_for_analysis()
    assert frame is not None and frame.image.shape == (240, 320, 3) and not frame.scaled
    assert frame.full_image() is frame.image


def test_analysis_size_is_checked() -> None:
    with pytest.raises(ValueError, match="analysis_size"):
        CameraSource("bad", "file:///nonexistent.mp4", analysis_size=(8, 416))


def _in_cycle(obj: object, depth: int = 5) -> bool:
    """Whether `obj` reaches itself through at most `depth` references (functions and classes
    are not followed: through their globals everything reaches everything)."""
    seen = {id(obj)}
    level = [obj]
    for _ in range(depth):
        following = []
        for o in level:
            for r in gc.get_referents(o):
                if r is obj:
                    return True
                if id(r) not in seen and not isinstance(r, (types.FunctionType, type, types.ModuleType)):
                    seen.add(id(r))
                    following.append(r)
        level = following
    return False


def test_an_analysis_frame_is_freed_by_its_last_reference(clip: Clip, sources: list[CameraSource]) -> None:
    """No reference cycle through the frame and its full picture: a cycle waits for the cyclic GC,
    and a camera-group actor's oldest generation runs every few minutes (bench/soak.py: 120
    pictures of ~2.4 MiB waiting at once)."""
    src = _played_once(clip, sources, "hd", 1280, 720)
    frame = src.take_for_analysis()
    assert frame is not None and frame.scaled
    assert frame.full_image().shape == (720, 1280, 3)
    assert not _in_cycle(frame)
    assert not _in_cycle(src.latest())
