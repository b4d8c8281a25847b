"""One camera source: a PyAV decode thread that keeps the latest frame, offers frames for analysis
at a set rate through a latest-only slot, reconnects with backoff and reports its health.

The thread decodes every frame (so that the decoder stays in step and the live view is fresh)
but converts to RGB only what someone asks for: `latest()` and `take_for_analysis()` convert
lazily, once per frame, in the caller's thread. Nothing that a stream can do (refuse the
connection, stop sending, send garbage, change resolution) ends the thread: each failure becomes
a health message and a reconnect after an exponentially growing, jittered delay.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import av.logging
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from smartcity.core.events import CameraState
from smartcity.core.vision import letterbox_fit
from smartcity.sources.options import Backoff, SourceOptions
from smartcity.sources.session import (
    FfmpegLogs,
    SessionEnd,
    SessionProgress,
    StreamPlan,
    declared_duration,
    ffmpeg_message,
    media_error,
    nominal_fps,
)
from smartcity.sources.target import Target, describe_open_error, resolve_target
from smartcity.sources.types import Frame, SourceHealth

log = logging.getLogger(__name__)

# Media time steps beyond this are discontinuities (a loop, a camera restart), not frame intervals.
_MAX_FRAME_INTERVAL_S = 1.0
# A paced source that falls this far behind its schedule starts a new schedule instead of bursting.
_MAX_PACE_LAG_S = 0.5
_FALLBACK_FPS = 25.0
_EPS = 1e-3


def _ensure_ffmpeg_error_logs() -> None:
    # PyAV discards FFmpeg's log by default; decoder errors that FFmpeg conceals are only visible
    # there. With a level set, each decode thread captures the errors of its own calls.
    if av.logging.get_level() is None:
        av.logging.set_level(av.logging.ERROR)


class _Picture:
    """A decoded picture at the camera's size: the decoder's YUV frame until someone asks for the
    RGB one, converted once. It refers to nothing else, so that what hands it out (an analysis
    frame's `full`) makes no reference cycle with it (see `_Decoded`)."""

    __slots__ = ("_frame", "_video", "camera_id", "height", "index", "lock", "t", "width")

    def __init__(self, camera_id: str, index: int, t: float, video: av.VideoFrame) -> None:
        self.camera_id = camera_id
        self.index = index
        self.t = t
        self.width = int(video.width)
        self.height = int(video.height)
        self._video: av.VideoFrame | None = video
        self._frame: Frame | None = None
        self.lock = threading.Lock()

    def frame(self) -> Frame:
        with self.lock:
            return self.frame_locked()

    def frame_locked(self) -> Frame:
        if self._frame is None:
            assert self._video is not None
            image = self._video.to_ndarray(format="rgb24")
            image.flags.writeable = False
            self._frame = self.frame_of(image)
            self._video = None  # give the decoder's buffer back
        return self._frame

    def frame_of(self, image: np.ndarray, full: Callable[[], np.ndarray] | None = None) -> Frame:
        """A `Frame` of this picture showing `image` (the picture itself, or it scaled)."""
        return Frame(
            camera_id=self.camera_id, index=self.index, t=self.t, image=image, width=self.width, height=self.height, full=full
        )

    def image(self) -> np.ndarray:
        return self.frame().image

    def video_locked(self) -> av.VideoFrame | None:
        """The YUV frame, None once the RGB one is made (call with `lock` held)."""
        return self._video


class _Decoded:
    """A decoded picture, converted to RGB `Frame`s once each, on first demand: at full size (live
    views, snapshots) and, when the source resizes for analysis, at `analysis_size` (one swscale
    pass from the decoder's YUV). The YUV picture is kept until the full frame is made, so that
    an analysed frame can still give its full picture to an evidence snapshot.

    The analysis frame's `full` refers to the `_Picture`, never to this object, which holds the
    analysis frame: a cycle between them would outlive its last use until the cyclic GC's oldest
    generation ran, every few minutes in a camera-group actor, with the picture's buffers (YUV,
    RGB at both sizes, ~2.4 MiB for 768x576). bench/soak.py's camera group held 120 of them at
    once (428 MiB of anonymous memory; 231 MiB after one `gc.collect()`)."""

    __slots__ = ("_picture", "_small", "analysis_size")

    def __init__(
        self, camera_id: str, index: int, t: float, video: av.VideoFrame, analysis_size: tuple[int, int] | None = None
    ) -> None:
        self._picture = _Picture(camera_id, index, t, video)
        self.analysis_size = analysis_size  # (width, height); None: analysis gets the full frame
        self._small: Frame | None = None

    def frame(self) -> Frame:
        return self._picture.frame()

    def full_image(self) -> np.ndarray:
        return self._picture.image()

    def analysis(self, reformatter: VideoReformatter) -> Frame:
        """The frame for analysis: scaled to `analysis_size` in one conversion from YUV (the
        caller's `reformatter` keeps its scaler between frames), else the full frame."""
        if self.analysis_size is None:
            return self.frame()
        pic = self._picture
        with pic.lock:
            if self._small is None:
                video = pic.video_locked()
                if video is None:  # the full frame was made first: scale nothing, hand it out
                    return pic.frame_locked()
                w, h = self.analysis_size
                image = reformatter.reformat(
                    video, width=w, height=h, format="rgb24", interpolation=Interpolation.AREA
                ).to_ndarray()
                image.flags.writeable = False
                self._small = pic.frame_of(image, full=pic.image)
            return self._small


class _Stopped(Exception):
    pass


class CameraSource:
    """One camera, decoded in its own daemon thread named `camera-<id>`.

    URLs: rtsp:// and rtsps:// (transport from the options), http(s)://, file:// or a plain
    path (looped, paced at the file's frame rate), demo:// (the demo clip).
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        analysis_fps: float = 5.0,
        options: SourceOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        analysis_size: tuple[int, int] | None = None,
    ) -> None:
        """`analysis_size`: the detector's input (height, width); frames for analysis are then
        decoded straight to the size they take in it (`core.vision.letterbox_fit`), never larger
        than the camera's picture. None: analysis gets full frames."""
        if not analysis_fps > 0:
            raise ValueError(f"analysis_fps must be > 0, got {analysis_fps}")
        if analysis_size is not None and (len(analysis_size) != 2 or min(analysis_size) < 16):
            raise ValueError(f"analysis_size must be (height, width) of at least 16 pixels, got {analysis_size}")
        self.analysis_size = None if analysis_size is None else (int(analysis_size[0]), int(analysis_size[1]))
        self._reformatter = VideoReformatter()
        self._fit: tuple[tuple[int, int], tuple[int, int] | None] | None = None  # picture size -> its scaled size
        self.camera_id = camera_id
        self.url = url
        self.options = options or SourceOptions()
        self._analysis_period = 1.0 / analysis_fps
        self._clock = clock
        self._wall = wall_clock
        self._backoff = Backoff.from_options(self.options, rng)
        self._target = resolve_target(url)

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._slot_free = threading.Event()
        self._lossless = False
        self._thread: threading.Thread | None = None

        # Everything below is guarded by _lock.
        self._latest: _Decoded | None = None
        self._pending: _Decoded | None = None
        self._index = 0
        self._decode_errors = 0
        self._reconnects = 0
        self._dropped = 0
        self._resolution_changes = 0
        self._arrivals: deque[float] = deque()
        self._taken: deque[float] = deque()
        self._error_times: deque[float] = deque()
        self._last_error = ""
        self._connected = False
        self._attempted = False
        self._connected_since = 0.0
        self._started_at = 0.0
        self._last_frame_mono: float | None = None
        self._last_frame_wall: float | None = None
        self._size: tuple[int, int] | None = None
        self.nominal_fps: float | None = None
        self._failure = ""
        self._retry_at: float | None = None
        self._notice = ""
        self._notice_at = 0.0
        self._offline_logged = False

        # Decode-thread state (touched by that thread only).
        self._media_t = 0.0
        self._have_media_t = False
        self._next_analysis = 0.0
        self._pace_anchor = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the decode thread (no-op when it is already running)."""
        if self.running:
            return
        _ensure_ffmpeg_error_logs()
        self._stop.clear()
        with self._lock:
            self._started_at = self._clock()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the decode thread and wait for it; True when it has ended.

        A thread blocked inside FFmpeg ends within the open or read timeout; the default
        `timeout` waits that long.
        """
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        if timeout is None:
            timeout = max(self.options.open_timeout_s, self.options.read_timeout_s) + 2.0
        thread.join(timeout)
        if thread.is_alive():
            log.warning("camera %s: decode thread still running %.1fs after stop", self.camera_id, timeout)
            return False
        self._thread = None
        with self._lock:
            self._connected = False
            self._failure = "stopped"
            self._retry_at = None
        return True

    # -- consumers -------------------------------------------------------------------------

    def latest(self) -> Frame | None:
        """The most recently decoded frame (for live views and snapshots), or None before the first."""
        with self._lock:
            decoded = self._latest
        return decoded.frame() if decoded is not None else None

    def take_for_analysis(self) -> Frame | None:
        """The frame waiting for analysis, if one is due (non-blocking); each frame is handed out once."""
        with self._lock:
            decoded = self._pending
            self._pending = None
            self._slot_free.set()
            if decoded is not None:
                now = self._clock()
                self._taken.append(now)
                _prune(self._taken, now - self.options.health_window_s)
        return decoded.analysis(self._reformatter) if decoded is not None else None

    def health(self) -> SourceHealth:
        """A snapshot of this source's state, rates and counters."""
        now = self._clock()
        opts = self.options
        window = opts.health_window_s
        with self._lock:
            for q in (self._arrivals, self._taken, self._error_times):
                _prune(q, now - window)
            span = min(window, now - self._connected_since) if self._connected else window
            input_fps = len(self._arrivals) / max(span, 1.0)
            analysed_span = min(window, now - self._started_at) if self._started_at else window
            analysed_fps = len(self._taken) / max(analysed_span, 1.0)
            state, message = self._state_locked(now, input_fps)
            retry_in = None
            if self._retry_at is not None and not self._connected:
                retry_in = max(0.0, self._retry_at - now)
            return SourceHealth(
                camera_id=self.camera_id,
                state=state,
                input_fps=input_fps,
                analysed_fps=analysed_fps,
                last_frame_t=self._last_frame_wall,
                decode_errors=self._decode_errors,
                reconnects=self._reconnects,
                frames_dropped=self._dropped,
                width=self._size[0] if self._size else None,
                height=self._size[1] if self._size else None,
                message=message,
                frames_decoded=self._index,
                resolution_changes=self._resolution_changes,
                nominal_fps=self.nominal_fps,
                retry_in_s=retry_in,
            )

    def _state_locked(self, now: float, input_fps: float) -> tuple[CameraState, str]:
        opts = self.options
        if not self._connected:
            if self._thread is None and not self._attempted:
                return CameraState.STARTING, "not started"
            if not self._attempted:
                return CameraState.STARTING, "connecting"
            return CameraState.OFFLINE, self._failure or "not connected"
        if self._error_times:
            n = len(self._error_times)
            return (
                CameraState.DEGRADED,
                f"{n} decode error{'s' if n > 1 else ''} in the last {opts.health_window_s:g}s: {self._last_error}",
            )
        last = self._last_frame_mono
        if last is None or last < self._connected_since:
            return CameraState.STARTING, "connected, waiting for the first frame"
        interval = 1.0 / self.nominal_fps if self.nominal_fps else 1.0 / _FALLBACK_FPS
        stall = max(1.0, 3.0 * interval)
        if now - last > stall:
            return CameraState.DEGRADED, f"no frame for {now - last:.1f}s"
        if (
            self.nominal_fps
            and now - self._connected_since >= opts.health_window_s
            and input_fps < opts.degraded_fps_ratio * self.nominal_fps
        ):
            return CameraState.DEGRADED, f"input {input_fps:.1f} fps, expected {self.nominal_fps:g} fps"
        if self._notice and now - self._notice_at <= opts.notice_hold_s:
            return CameraState.ONLINE, self._notice
        return CameraState.ONLINE, ""

    # -- decode thread ---------------------------------------------------------------------

    def _run(self) -> None:
        with av.logging.Capture(local=True) as ffmpeg_logs:
            lost_before = False
            while not self._stop.is_set():
                if lost_before:
                    with self._lock:
                        self._reconnects += 1
                try:
                    end = self._session(ffmpeg_logs)
                except _Stopped:
                    break
                except Exception as exc:  # a bug must not end the camera: report it and retry
                    log.exception("camera %s: unexpected error in decode thread", self.camera_id)
                    end = SessionEnd(frames=0, ok=False, message=f"internal error: {exc!r}")
                if end.stopped or self._stop.is_set():
                    break
                if end.frames > 0:
                    self._backoff.reset()
                if end.ok and end.frames > 0 and self._target.is_file:
                    if self.options.loop:
                        lost_before = False
                        continue  # loop the file straight away; the camera stays online
                    self._set_offline("end of file", None)
                    break
                lost_before = True
                delay = self._backoff.next_delay()
                self._set_offline(end.message, delay)
                if self._stop.wait(delay):
                    break
            ffmpeg_logs.clear()

    def _set_offline(self, message: str, delay: float | None) -> None:
        now = self._clock()
        with self._lock:
            was_connected = self._connected
            self._connected = False
            self._attempted = True
            self._failure = message
            self._retry_at = now + delay if delay is not None else None
            first = not self._offline_logged
            self._offline_logged = True
        if delay is None:
            log.info("camera %s: %s (%s)", self.camera_id, message, self._target.display)
        elif was_connected or first:
            log.warning(
                "camera %s offline: %s (%s); retrying in %.1fs",
                self.camera_id,
                message,
                self._target.display,
                delay,
            )

    def _set_connected(self, nominal_fps: float | None) -> None:
        now = self._clock()
        with self._lock:
            if not self._connected:
                self._connected_since = now
            recovered = self._offline_logged
            self._connected = True
            self._attempted = True
            self.nominal_fps = nominal_fps
            self._retry_at = None
            self._failure = ""
            self._offline_logged = False
            reconnects = self._reconnects
        if recovered:
            log.info("camera %s connected again (%d reconnects so far)", self.camera_id, reconnects)

    def _container_options(self, target: Target) -> dict[str, str]:
        opts: dict[str, str] = {}
        if target.scheme in ("rtsp", "rtsps"):
            opts["rtsp_transport"] = self.options.rtsp_transport
            opts["allowed_media_types"] = "video"
        if not target.is_file:
            # Probing a live stream for long would eat the open timeout.
            probe_us = int(min(1.0, self.options.open_timeout_s / 2) * 1_000_000)
            opts["analyzeduration"] = str(probe_us)
        return opts

    def _session(self, ffmpeg_logs: FfmpegLogs) -> SessionEnd:
        """One connection (or one pass over a file): open, decode until it ends, say why."""
        opened = self._open_container(ffmpeg_logs)
        if isinstance(opened, SessionEnd):
            return opened
        container = opened
        progress = SessionProgress()
        try:
            plan = self._plan_stream(container)
            if isinstance(plan, SessionEnd):
                return plan
            ffmpeg_logs.clear()
            self._set_connected(plan.nominal_fps)
            if not self._decode(container, plan, progress, ffmpeg_logs):
                return SessionEnd(frames=progress.frames, ok=False, message="stopped", stopped=True)
            if media_error(ffmpeg_logs):
                self._record_decode_error(media_error(ffmpeg_logs))
            ffmpeg_logs.clear()
            self._check_truncated(plan, progress)
            if progress.frames == 0:
                return SessionEnd(frames=0, ok=False, message="stream ended before the first frame")
            return SessionEnd(frames=progress.frames, ok=True, message="stream ended")
        except _Stopped:
            raise
        except av.error.FFmpegError as exc:  # ExitError (a read timeout) included
            ffmpeg_logs.clear()
            return self._stream_failure(exc, progress.frames)
        finally:
            try:
                container.close()
            except Exception:  # closing a broken stream must not mask why it broke
                log.debug("camera %s: error closing container", self.camera_id, exc_info=True)

    def _open_container(self, ffmpeg_logs: FfmpegLogs) -> Any:
        """The opened container (typed loosely, as PyAV's are), or how opening failed."""
        target, opts = self._target, self.options
        try:
            path = target.open_path()
        except Exception as exc:
            return SessionEnd(frames=0, ok=False, message=f"cannot prepare source: {exc}")
        opened_at = self._clock()
        try:
            return av.open(
                path,
                mode="r",
                options=self._container_options(target),
                timeout=(opts.open_timeout_s, opts.read_timeout_s),
            )
        except Exception as exc:
            ffmpeg_logs.clear()
            if self._stop.is_set():
                raise _Stopped from exc
            message = describe_open_error(exc, target, opts, self._clock() - opened_at)
            return SessionEnd(frames=0, ok=False, message=message)

    def _plan_stream(self, container: Any) -> StreamPlan | SessionEnd:
        """The video stream to decode, its decoder set up, and how its frames are timed."""
        target, opts = self._target, self.options
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            return SessionEnd(frames=0, ok=False, message=f"not a video: no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if opts.decode_threads > 0:
            cc.thread_count = opts.decode_threads
        else:
            cc.thread_type = "AUTO"
        declared = declared_duration(container, stream)
        # RTSP servers announce a range even for live cameras: RTSP is always live.
        live = target.scheme in ("rtsp", "rtsps") or (not target.is_file and declared is None)
        # a file analysed as fast as possible: wait for the analysis instead of dropping
        self._lossless = opts.lossless and not live
        return StreamPlan(stream, nominal_fps(stream), declared, live, paced=opts.realtime and not live)

    def _decode(self, container: Any, plan: StreamPlan, progress: SessionProgress, ffmpeg_logs: FfmpegLogs) -> bool:
        """Decode and publish every frame until the stream ends (True) or the source stops (False)."""
        prev_pts: int | None = None
        prev_arrival: float | None = None
        for packet in container.demux(plan.stream):
            if self._stop.is_set():
                return False
            error = ""
            corrupt = False
            try:
                pictures = packet.decode()
            except av.error.FFmpegError as exc:
                error = ffmpeg_message(exc)
                pictures = []
            for picture in pictures:
                corrupt = corrupt or bool(picture.is_corrupt)
                dt = self._frame_interval(picture, prev_pts, prev_arrival, plan.nominal_fps, plan.live)
                prev_pts = picture.pts
                prev_arrival = self._clock()
                if picture.time is not None:
                    progress.first_time = picture.time if progress.first_time is None else progress.first_time
                    progress.last_time = picture.time
                self._advance_media_time(dt, plan.paced)
                self._publish(picture)
                progress.frames += 1
            if ffmpeg_logs:
                error = error or media_error(ffmpeg_logs)
                ffmpeg_logs.clear()
            if corrupt and not error:
                error = "corrupt frame"
            if error:
                self._record_decode_error(error)
        return True

    def _check_truncated(self, plan: StreamPlan, progress: SessionProgress) -> None:
        """A file that ends well before the duration it declares counts as a decode error."""
        first, last, nominal, declared = progress.first_time, progress.last_time, plan.nominal_fps, plan.declared_s
        if not self._target.is_file or declared is None or last is None or first is None:
            return
        played = last - first + 1.0 / (nominal or _FALLBACK_FPS)
        slack = max(1.0, 2.0 / nominal) if nominal else 1.0
        if played + slack < declared:
            self._record_decode_error(f"file truncated: ended at {played:.1f}s of {declared:.1f}s")

    def _stream_failure(self, exc: av.error.FFmpegError, frames: int) -> SessionEnd:
        """How a stream that failed while decoding ended (timeouts, lost connections, bad files)."""
        if isinstance(exc, av.error.ExitError):
            if self._stop.is_set():
                raise _Stopped from None
            return SessionEnd(frames=frames, ok=False, message=f"no data for {self.options.read_timeout_s:g}s")
        msg = ffmpeg_message(exc)
        if self._target.is_file:
            self._record_decode_error(msg)
            return SessionEnd(frames=frames, ok=frames > 0, message=f"stream error: {msg}")
        if "ends prematurely" in msg or isinstance(exc, av.error.EOFError):
            return SessionEnd(frames=frames, ok=False, message="stream ended: connection closed by the camera")
        return SessionEnd(frames=frames, ok=False, message=f"stream lost: {msg}")

    def _frame_interval(
        self,
        picture: av.VideoFrame,
        prev_pts: int | None,
        prev_arrival: float | None,
        nominal: float | None,
        live: bool,
    ) -> float:
        default = 1.0 / (nominal or _FALLBACK_FPS)
        pts, tb = picture.pts, picture.time_base
        if pts is not None and tb is not None and prev_pts is not None and pts > prev_pts:
            dt = float((pts - prev_pts) * tb)
            return dt if dt <= _MAX_FRAME_INTERVAL_S else default
        if live and prev_arrival is not None:
            dt = self._clock() - prev_arrival
            return dt if 0.0 < dt <= _MAX_FRAME_INTERVAL_S else default
        return default

    def _advance_media_time(self, dt: float, paced: bool) -> None:
        if self._have_media_t:
            self._media_t += dt
        else:
            self._have_media_t = True
            self._pace_anchor = self._clock()
        if not paced:
            return
        now = self._clock()
        due = self._pace_anchor + self._media_t
        wait = due - now
        if wait > 0:
            if self._stop.wait(wait):
                raise _Stopped
        elif wait < -_MAX_PACE_LAG_S:
            self._pace_anchor = now - self._media_t

    def _publish(self, picture: av.VideoFrame) -> None:
        if self._lossless and self._media_t + _EPS >= self._next_analysis:
            while self._pending is not None:  # backpressure from the analysis (benchmarks, batch jobs)
                self._slot_free.clear()
                if self._pending is None:
                    break
                if self._stop.wait(0) or not self._slot_free.wait(0.05) and self._stop.is_set():
                    raise _Stopped
        mono = self._clock()
        wall = self._wall()
        size = (int(picture.width), int(picture.height))
        notice = ""
        small = self._analysis_fit(size)
        with self._lock:
            decoded = _Decoded(self.camera_id, self._index, wall, picture, small)
            self._index += 1
            self._arrivals.append(mono)
            _prune(self._arrivals, mono - self.options.health_window_s)
            if self._size is not None and size != self._size:
                self._resolution_changes += 1
                notice = f"resolution changed {self._size[0]}x{self._size[1]} -> {size[0]}x{size[1]}"
                self._notice = notice
                self._notice_at = mono
            self._size = size
            self._latest = decoded
            self._last_frame_mono = mono
            self._last_frame_wall = wall
            if self._media_t + _EPS >= self._next_analysis:
                if self._pending is not None:
                    self._dropped += 1
                self._pending = decoded
                self._next_analysis += self._analysis_period
                if self._next_analysis <= self._media_t:
                    self._next_analysis = self._media_t + self._analysis_period
        if notice:
            log.warning("camera %s: %s", self.camera_id, notice)

    def _analysis_fit(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """The (width, height) analysis frames of a picture of `size` are decoded to (None: its own)."""
        if self.analysis_size is None:
            return None
        if self._fit is None or self._fit[0] != size:
            fit: tuple[int, int] | None = letterbox_fit(size[0], size[1], self.analysis_size)
            if fit is not None and (fit[0] >= size[0] or fit[1] >= size[1]):
                fit = None  # a picture already within the input: the detector takes it as it is
            self._fit = (size, fit)
        return self._fit[1]

    def _record_decode_error(self, message: str) -> None:
        now = self._clock()
        with self._lock:
            errors = self._error_times
            first_in_window = not errors or errors[-1] < now - self.options.health_window_s
            self._decode_errors += 1
            self._error_times.append(now)
            _prune(self._error_times, now - self.options.health_window_s)
            self._last_error = message
        if first_in_window:
            log.warning("camera %s: decode error: %s", self.camera_id, message)


def _prune(times: deque[float], before: float) -> None:
    while times and times[0] < before:
        times.popleft()
