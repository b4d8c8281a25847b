"""One decode session of a camera source, as data: how its stream is timed, how far decoding
got, how it ended, and what FFmpeg says about the media (stream facts, error texts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av

FfmpegLogs = list[tuple[int, str, str]]  # (level, module, message) captured from FFmpeg


@dataclass(slots=True)
class SessionEnd:
    """How one connection (or one pass over a file) ended."""

    frames: int
    ok: bool  # ended by end of stream, not by an error
    message: str
    stopped: bool = False


@dataclass(slots=True)
class StreamPlan:
    """The video stream of one session and how its frames are timed."""

    stream: Any  # PyAV's video stream
    nominal_fps: float | None
    declared_s: float | None  # duration the container declares (files), None for live streams
    live: bool
    paced: bool  # a file played at its own frame rate


@dataclass(slots=True)
class SessionProgress:
    """How far a session's decoding got (read when it fails half-way)."""

    frames: int = 0
    first_time: float | None = None
    last_time: float | None = None


def nominal_fps(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            fps = float(rate)
            if 0.5 <= fps <= 240.0:
                return fps
    return None


def declared_duration(container: Any, stream: Any) -> float | None:
    """The duration the file says it has (None for a live stream)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return float(container.duration) / 1_000_000
    return None


# FFmpeg components whose errors are about the connection, not the pictures: a lost connection
# shows up as the end of the stream, and is reported as such rather than as a decode error.
_NETWORK_LOG_SOURCES = frozenset(
    {"tcp", "udp", "http", "https", "tls", "rtsp", "rtp", "rtmp", "srt", "hls", "AVIOContext", "crypto"}
)


def media_error(logs: FfmpegLogs) -> str:
    """The last error FFmpeg logged about the media itself (decoder or demuxer), or ""."""
    for _level, name, message in reversed(logs):
        if name not in _NETWORK_LOG_SOURCES and message.strip():
            return message.strip()
    return ""


def ffmpeg_message(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError):
        text = exc.strerror or str(exc)
        log_line = getattr(exc, "log", None)
        if log_line and isinstance(log_line, tuple) and len(log_line) == 3:
            text = f"{text} ({str(log_line[2]).strip()})"
        return str(text)
    return str(exc)
