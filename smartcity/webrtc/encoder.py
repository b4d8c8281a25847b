"""One camera's video encoder for live views: RGB pictures in, RTP-ready `av.Packet`s out.

The packets are handed unchanged to every viewer's aiortc sender, whose codec `pack()` splits
them into RTP payloads without re-encoding (aiortc's RTCRtpSender packs an `av.Packet` returned
by a track's `recv()` and only encodes `av.Frame`s). Timestamps are the capture wall time on a
90 kHz clock, so the browser plays at the camera's pace even when frames are skipped.

H.264: libx264 (ultrafast, zerolatency: no B-frames, no look-ahead, one packet per picture),
constrained-baseline as every WebRTC H.264 decoder expects, Annex-B start codes with SPS/PPS
before every key frame (aiortc's H.264 packer splits on start codes). VP8: libvpx realtime.
Synchronous and not thread-safe: the hub calls it from one worker thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.stream import VideoStream

from smartcity.webrtc.config import Codec

RTP_CLOCK = 90_000
TIME_BASE = Fraction(1, RTP_CLOCK)


@dataclass(frozen=True, slots=True, eq=False)
class EncodedFrame:
    """One encoded picture: `packet` (pts on the 90 kHz clock) shared read-only by every viewer."""

    packet: av.Packet[VideoStream]
    keyframe: bool
    index: int
    t: float
    size: int


class VideoEncoder:
    """Encodes pictures of one size with one codec; `encode(..., keyframe=True)` forces a key frame."""

    def __init__(self, codec: Codec, width: int, height: int, *, fps: float, bitrate_kbps: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"encoder size must be even, got {width}x{height}")
        self.codec_name: Codec = codec
        self.width, self.height = width, height
        ctx = av.CodecContext.create("libx264" if codec == "H264" else "libvpx", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = TIME_BASE
        ctx.framerate = Fraction(fps).limit_denominator(1001)
        ctx.bit_rate = bitrate_kbps * 1000
        # key frames come from the hub (periodic, joins, loss reports), not from a frame count
        ctx.gop_size = 100_000
        # one thread per encoder: a live view must not eat the cores of the analysis
        ctx.thread_count = 1
        if codec == "H264":
            ctx.profile = "Baseline"
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "forced-idr": "1",
                "x264-params": "repeat-headers=1:level=3.1",
            }
        else:
            ctx.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "lag-in-frames": "0",
                "error-resilient": "1",
            }
        self._ctx = ctx
        self._last_pts = -1

    def encode(self, image: np.ndarray, *, index: int, t: float, t0: float, keyframe: bool) -> list[EncodedFrame]:
        """Encode one RGB picture captured at wall time `t` (the stream started at `t0`)."""
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if (frame.width, frame.height) != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        else:
            frame = frame.reformat(format="yuv420p")
        # strictly increasing even if a source repeats or steps back its clock
        pts = max(self._last_pts + 1, round((t - t0) * RTP_CLOCK))
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        out = []
        for packet in self._ctx.encode(frame):
            packet.time_base = TIME_BASE
            out.append(EncodedFrame(packet, bool(packet.is_keyframe), index, t, packet.size))
        return out
