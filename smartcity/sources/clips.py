"""Video clips the project makes or finds itself: generated test clips and the demo camera's clip.

`generate_test_clip` writes a small synthetic video with PyAV (moving boxes over a gradient,
with the frame number drawn as a binary bar along the top so that a test can tell which
frame it received: `read_frame_counter`). `demo_video_path` finds OpenCV's `vtest.avi`
(people walking; see scripts/fetch_demo_video.sh) or generates a fallback clip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

log = logging.getLogger(__name__)

Pattern = Literal["moving_boxes", "static", "noise"]

DEMO_VIDEO_ENV = "SMARTCITY_DEMO_VIDEO"
DEMO_VIDEO_NAME = "vtest.avi"
DEBIAN_DEMO_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FALLBACK_DEMO_NAME = "demo_fallback.mp4"

# The frame counter: COUNTER_BITS cells along the top rows, white = 1, most significant first.
COUNTER_BITS = 16
_COUNTER_ROWS = 16

_CONTAINER_BY_SUFFIX = {".mp4": "mp4", ".mkv": "matroska", ".ts": "mpegts", ".avi": "avi", ".mov": "mov"}


def _counter_cell_width(width: int) -> int:
    return max(1, width // COUNTER_BITS)


def _draw_counter(img: np.ndarray, n: int) -> None:
    h, w = img.shape[:2]
    cell = _counter_cell_width(w)
    rows = min(_COUNTER_ROWS, h)
    img[:rows, : cell * COUNTER_BITS] = 0
    for bit in range(COUNTER_BITS):
        if (n >> (COUNTER_BITS - 1 - bit)) & 1:
            img[:rows, bit * cell : (bit + 1) * cell] = 255


def read_frame_counter(image: np.ndarray) -> int:
    """The frame number drawn by `generate_test_clip` into an RGB image (survives lossy coding)."""
    h, w = image.shape[:2]
    cell = _counter_cell_width(w)
    rows = min(_COUNTER_ROWS, h)
    n = 0
    for bit in range(COUNTER_BITS):
        # Sample the centre of each cell, away from edges blurred by the codec.
        x0 = bit * cell + cell // 4
        x1 = max(x0 + 1, bit * cell + (3 * cell) // 4)
        y0, y1 = rows // 4, max(rows // 4 + 1, (3 * rows) // 4)
        level = float(image[y0:y1, x0:x1].mean())
        n = (n << 1) | (1 if level >= 128.0 else 0)
    return n


def _render(
    pattern: Pattern, n: int, width: int, height: int, fps: float, rng: np.random.Generator
) -> np.ndarray:
    if pattern == "noise":
        img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        # A fixed gradient background, like a static street scene.
        xs = np.linspace(40, 120, width, dtype=np.float32)
        ys = np.linspace(60, 140, height, dtype=np.float32)
        base = (xs[None, :] + ys[:, None]) / 2.0
        img = np.empty((height, width, 3), dtype=np.uint8)
        img[..., 0] = base.astype(np.uint8)
        img[..., 1] = (base * 0.9).astype(np.uint8)
        img[..., 2] = (base * 0.8).astype(np.uint8)
        if pattern == "moving_boxes":
            t = n / fps
            bw, bh = max(4, width // 8), max(4, height // 6)
            boxes = (
                # (speed in widths per second, vertical position, colour)
                (0.20, 0.35, (220, 40, 40)),
                (-0.12, 0.60, (40, 200, 60)),
                (0.33, 0.80, (50, 80, 230)),
            )
            for speed, yfrac, colour in boxes:
                span = width + bw
                x = int((speed * t * width) % span) - bw
                if speed < 0:
                    x = width - x - bw
                y = int(yfrac * height) - bh // 2
                x0, x1 = max(0, x), min(width, x + bw)
                y0, y1 = max(0, y), min(height, y + bh)
                if x1 > x0 and y1 > y0:
                    img[y0:y1, x0:x1] = colour
    _draw_counter(img, n)
    return img


def generate_test_clip(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    fps: float,
    seconds: float,
    codec: str = "libx264",
    pattern: Pattern = "moving_boxes",
    start_index: int = 0,
    gop: int | None = None,
) -> Path:
    """Write a synthetic clip with PyAV and return its path.

    The container follows the suffix (.mp4, .mkv, .ts, .avi, .mov). Every frame carries its number
    (from `start_index`) as a binary bar along the top rows; `read_frame_counter` reads it back.
    `gop` is the key-frame interval in frames (default: one per second).
    """
    out = Path(path)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and >= 16, got {width}x{height}")
    if fps <= 0 or seconds <= 0:
        raise ValueError(f"fps and seconds must be positive, got fps={fps} seconds={seconds}")
    fmt = _CONTAINER_BY_SUFFIX.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported clip suffix {out.suffix!r}; use one of {sorted(_CONTAINER_BY_SUFFIX)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    n_frames = max(1, round(seconds * fps))
    rng = np.random.default_rng(1234)
    tmp = out.with_name(out.name + ".partial" + out.suffix)
    with av.open(str(tmp), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec!r} is not a video codec")
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop if gop is not None else max(1, round(fps))
        if codec == "libx264":
            # No B-frames: a live camera's stream, decodable frame by frame.
            stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        elif codec == "mpeg4":
            stream.codec_context.bit_rate = 2_000_000
        for i in range(n_frames):
            img = _render(pattern, start_index + i, width, height, fps, rng)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(out)
    return out


def _demo_candidates() -> list[Path]:
    found: list[Path] = []
    env = os.environ.get(DEMO_VIDEO_ENV)
    if env:
        found.append(Path(env))
    found.append(Path("data") / DEMO_VIDEO_NAME)
    # The checkout's data/ when running from elsewhere with an editable install.
    found.append(Path(__file__).resolve().parents[2] / "data" / DEMO_VIDEO_NAME)
    found.append(DEBIAN_DEMO_VIDEO)
    return found


def demo_video_path(
    data_dir: str | os.PathLike[str] = "data", *, search: Sequence[str | os.PathLike[str]] | None = None
) -> Path:
    """The demo camera's clip: vtest.avi if it can be found, else a generated fallback clip.

    Looks at $SMARTCITY_DEMO_VIDEO, then ./data/vtest.avi, then data/vtest.avi in the source checkout,
    then Debian's opencv-doc path; when none
    exists, generates (once) a 640x480, 10 s moving-boxes clip into `data_dir` and returns it.
    `search` replaces the places looked at.
    """
    candidates = [Path(p) for p in search] if search is not None else _demo_candidates()
    for candidate in candidates:
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    fallback = Path(data_dir) / FALLBACK_DEMO_NAME
    if fallback.is_file() and fallback.stat().st_size > 0:
        return fallback
    log.warning(
        "demo video %s not found (run scripts/fetch_demo_video.sh); generating %s",
        DEMO_VIDEO_NAME,
        fallback,
    )
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    return generate_test_clip(fallback, width=640, height=480, fps=10, seconds=10, codec=codec)
