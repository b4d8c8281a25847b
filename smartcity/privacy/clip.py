"""Evidence clips (pure: numpy and in-memory PyAV codecs, no I/O): the frames a camera keeps are
downscaled JPEGs of the raw picture with the private mask of their frame; a clip decodes them,
fills the privacy zones, pixelates each frame with its own mask (None: the whole frame, fail
closed) and encodes VP8 in WebM, which every Chromium plays in a <video> element (H.264 is not
in every build)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from smartcity.core.evidence import CLIP_MIME, CLIP_SUFFIX
from smartcity.core.privacy_mask import PrivacyMask
from smartcity.privacy.picture import compose, mjpeg
from smartcity.privacy.zones import ZonePainter

_MS = Fraction(1, 1000)
__all__ = ["CLIP_MIME", "CLIP_SUFFIX", "ClipFrame", "clip_size", "decode_jpeg", "keep_frame", "private_frames", "render_clip"]


@dataclass(frozen=True, slots=True, eq=False)
class ClipFrame:
    """One kept frame: its time, the raw picture downscaled as JPEG, and its private mask (in the
    pixels of the analysed frame; None: nobody could be located, the frame is hidden whole)."""

    t: float
    jpeg: bytes
    mask: PrivacyMask | None


def clip_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The clip's even size for a `width` x `height` frame: `target_width` wide at most."""
    w = min(width, target_width)
    h = max(2, round(height * w / width))
    return w - w % 2, h - h % 2


def keep_frame(image: np.ndarray, t: float, mask: PrivacyMask | None, *, width: int, quality: int) -> ClipFrame:
    """The frame as the ring keeps it (H x W x 3 uint8 RGB in)."""
    h, w = image.shape[:2]
    cw, ch = clip_size(w, h, width)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return ClipFrame(t, mjpeg(frame, cw, ch, quality), mask)


def decode_jpeg(data: bytes) -> np.ndarray:
    codec = av.CodecContext.create("mjpeg", "r")
    frames = [*codec.decode(av.Packet(data)), *codec.decode(None)]
    if not frames:
        raise ValueError("not a JPEG picture")
    out: np.ndarray = frames[0].to_ndarray(format="rgb24")
    return out


def private_frames(frames: Sequence[ClipFrame], painter: ZonePainter | None = None) -> list[np.ndarray]:
    """The pictures of `frames` as a viewer may see them: zones filled, each frame's private mask
    pixelated (raises rather than return a picture it could not pixelate)."""
    out = []
    for f in frames:
        img = decode_jpeg(f.jpeg)
        if painter is not None:
            img = painter.paint(img)
        out.append(compose(img, f.mask, pixelate_people=True, overlay=None))
    return out


def render_clip(frames: Sequence[ClipFrame], painter: ZonePainter | None = None, *, bitrate: int = 1_000_000) -> bytes:
    """A WebM (VP8) clip of `frames` (in time order), pixelated; each frame shown from its time
    (millisecond timestamps: the analysed rate may vary). ValueError for no frame."""
    if not frames:
        raise ValueError("a clip needs at least one frame")
    pictures = private_frames(frames, painter)
    h, w = pictures[0].shape[:2]
    t0 = frames[0].t
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=max(1, round(len(frames) / max(1e-3, frames[-1].t - t0 + 1e-3))))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = _MS
        stream.codec_context.time_base = _MS  # millisecond timestamps, not rounded to the frame rate
        # one thread and no look-ahead: libvpx's own threads make it ten times slower on a busy
        # machine, and a clip of seconds gains nothing from them (bench/evidence_clip.py)
        stream.codec_context.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "threads": "1",
            "lag-in-frames": "0",
            "crf": "10",
            "b": str(bitrate),
        }
        last = -1
        for f, pic in zip(frames, pictures):
            pts = max(last + 1, round((f.t - t0) * 1000))
            last = pts
            vf = av.VideoFrame.from_ndarray(pic if pic.shape[:2] == (h, w) else _fit(pic, w, h), format="rgb24")
            vf.pts, vf.time_base = pts, _MS
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def _fit(pic: np.ndarray, w: int, h: int) -> np.ndarray:
    """A frame of another size (the camera changed resolution mid-clip) scaled to the clip's."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pic), format="rgb24")
    out: np.ndarray = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    return out
