"""Camera sources over files: pacing, analysis rate, latest-only slot, bad media, resolution changes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from source_helpers import wait_health, wait_until

from smartcity.core.events import CameraHealth, CameraState
from smartcity.sources import CameraSource, SourceOptions, generate_test_clip, read_frame_counter

Clip = Callable[..., Path]


def _camera_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("camera-")]


def test_file_source_decodes_paces_and_loops(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("pace_20fps.mp4", width=160, height=120, fps=20, seconds=1)
    src = CameraSource("pace", f"file://{path}", analysis_fps=5)
    sources.append(src)
    assert src.health().state == CameraState.STARTING
    assert src.latest() is None
    t0 = time.monotonic()
    src.start()
    assert "camera-pace" in _camera_threads()
    # Past the clip's 20 frames: it looped.
    h = wait_health(src, lambda h: h.frames_decoded >= 26, 15)
    elapsed = time.monotonic() - t0
    frame = src.latest()
    assert src.stop() is True
    assert "camera-pace" not in _camera_threads()

    assert h.state == CameraState.ONLINE, h
    assert (h.width, h.height) == (160, 120)
    assert h.nominal_fps == pytest.approx(20)
    assert h.decode_errors == 0
    assert h.reconnects == 0  # looping a file is not a reconnect
    # Paced at 20 fps, not decoded as fast as possible (which would be thousands per second).
    assert h.frames_decoded <= 20 * elapsed + 5, (h.frames_decoded, elapsed)
    assert frame is not None
    assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
    assert frame.image.flags.writeable is False
    assert (frame.camera_id, frame.width, frame.height) == ("pace", 160, 120)
    assert abs(frame.t - time.time()) < 30
    # Counter on the clip is the position in the file; the source index keeps counting across loops.
    assert read_frame_counter(frame.image) == frame.index % 20
    assert src.health().state == CameraState.OFFLINE
    assert src.health().message == "stopped"


def test_analysis_rate_is_honoured_approximately(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("rate_20fps.mp4", width=160, height=120, fps=20, seconds=2)
    src = CameraSource("rate", str(path), analysis_fps=5)
    sources.append(src)
    src.start()
    taken = []
    deadline = time.monotonic() + 2.2
    while time.monotonic() < deadline:
        f = src.take_for_analysis()
        if f is not None:
            taken.append(f)
        time.sleep(0.02)
    h = src.health()
    src.stop()
    decoded = h.frames_decoded
    assert decoded >= 10, h
    # One frame in four is offered (20 fps -> 5 fps): counts, not timings.
    assert len(taken) + h.frames_dropped == pytest.approx(decoded / 4, abs=2)
    counters = [read_frame_counter(f.image) for f in taken]
    assert all(c % 4 == 0 for c in counters), counters
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert 0.5 <= h.analysed_fps <= 7.0, h


def test_slot_keeps_only_the_latest_frame_and_counts_drops(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("drop_25fps.mp4", width=160, height=120, fps=25, seconds=1)
    # Analysis as fast as the stream: every frame is due; nobody takes them for a while.
    opts = SourceOptions(realtime=False, loop=False)
    src = CameraSource("drop", str(path), analysis_fps=100, options=opts)
    sources.append(src)
    src.start()
    assert wait_until(lambda: not src.running, 20), "a file played once must end its thread"
    h = src.health()
    assert h.state == CameraState.OFFLINE and h.message == "end of file"
    assert h.frames_decoded == 25
    frame = src.take_for_analysis()
    assert frame is not None
    assert frame.index == 24 and read_frame_counter(frame.image) == 24  # the newest one
    assert src.take_for_analysis() is None  # handed out once
    assert h.frames_dropped == 24
    latest = src.latest()
    assert latest is not None and latest.index == 24
    assert latest.image is frame.image  # converted once, shared by the view and the analysis


def test_take_returns_fresh_frames_while_the_stream_runs(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("fresh_25fps.mp4", width=160, height=120, fps=25, seconds=2)
    src = CameraSource("fresh", str(path), analysis_fps=25)
    sources.append(src)
    src.start()
    assert wait_until(lambda: src.health().frames_decoded >= 10, 10)
    time.sleep(0.5)  # let several frames pile up
    first = src.take_for_analysis()
    assert first is not None
    h = src.health()
    assert h.frames_dropped >= 3, h
    latest = src.latest()
    assert latest is not None and latest.index - first.index <= 5  # the slot held the newest, not the oldest
    assert wait_until(lambda: (f := src.take_for_analysis()) is not None and f.index > first.index, 5)
    src.stop()


def test_health_converts_to_a_camera_health_event(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("event_10fps.mp4", width=160, height=120, fps=10, seconds=1)
    src = CameraSource("evt", str(path), analysis_fps=2)
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.frames_decoded >= 3, 10)
    src.stop()
    ev = h.to_event(group="g1", t=1_700_000_000.0, seq=7)
    assert isinstance(ev, CameraHealth)
    assert (ev.camera_id, ev.group, ev.seq, ev.state) == ("evt", "g1", 7, CameraState.ONLINE)
    assert (ev.width, ev.height) == (160, 120)
    assert ev.last_frame_t == h.last_frame_t
    d = ev.to_dict()
    assert d["type"] == "camera_health" and d["state"] == "online"


def test_corrupt_file_reports_decode_errors_and_keeps_running(
    tmp_path: Path, clip: Clip, sources: list[CameraSource]
) -> None:
    good = clip("corrupt_src.mp4", width=160, height=120, fps=10, seconds=4)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    # Overwrite bytes inside the coded pictures (the middle third), leaving the container readable.
    for at in range(len(data) // 3, 2 * len(data) // 3, 499):
        data[at : at + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    src = CameraSource("bad", str(bad), options=SourceOptions(realtime=False))
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.decode_errors >= 3 and h.frames_decoded >= 80, 20)
    assert src.running
    assert h.state == CameraState.DEGRADED, h
    assert re.match(r"\d+ decode errors? in the last 5s: \S", h.message), h.message
    assert h.reconnects == 0
    src.stop()


def test_truncated_file_is_reported(tmp_path: Path, clip: Clip, sources: list[CameraSource]) -> None:
    whole = clip("trunc_src.mkv", width=160, height=120, fps=10, seconds=4)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2 + 33])
    src = CameraSource("cut", str(cut), options=SourceOptions(realtime=False))
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.decode_errors >= 1, 10)
    assert src.running
    assert h.state == CameraState.DEGRADED
    assert re.search(r"file truncated: ended at 1\.\ds of 4\.0s|ended prematurely", h.message), h.message
    src.stop()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello, I am a text file\n" * 50, r"^not a video: junk\.mp4"),
        (bytes(range(256)) * 200, r"^not a video: junk\.mp4"),
    ],
)
def test_not_a_video_goes_offline_with_a_clear_message(
    tmp_path: Path, content: bytes, expected: str, sources: list[CameraSource]
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(content)
    src = CameraSource("junk", str(junk), options=SourceOptions(backoff_initial_s=0.05, backoff_max_s=0.1))
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.state == CameraState.OFFLINE and h.reconnects >= 2, 10)
    assert re.match(expected, h.message), h.message
    assert h.frames_decoded == 0 and h.width is None
    assert src.running
    src.stop()


def test_audio_only_file_is_not_a_video(tmp_path: Path, sources: list[CameraSource]) -> None:
    import av

    path = tmp_path / "sound.mka"
    with av.open(str(path), "w", format="matroska") as c:
        stream = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    src = CameraSource("audio", str(path), options=SourceOptions(backoff_initial_s=0.05, backoff_max_s=0.1))
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.state == CameraState.OFFLINE, 10)
    assert h.message == "not a video: no video stream (streams: audio)"
    src.stop()


def test_missing_file_is_offline_and_retried_with_backoff(
    tmp_path: Path, sources: list[CameraSource]
) -> None:
    missing = tmp_path / "nope.mp4"
    opts = SourceOptions(backoff_initial_s=0.2, backoff_max_s=0.8, backoff_jitter=0.0)
    src = CameraSource("missing", str(missing), options=opts)
    sources.append(src)
    src.start()
    time.sleep(1.7)
    h = src.health()
    assert h.state == CameraState.OFFLINE
    assert h.message == f"file not found: {missing}"
    # Attempts at 0, 0.2, 0.6, 1.4 s (delays 0.2, 0.4, 0.8): 3 reconnects. A fixed 0.2 s delay
    # would give 8, no delay thousands.
    assert 2 <= h.reconnects <= 4, h
    assert h.retry_in_s is not None and 0 <= h.retry_in_s <= 0.8

    # The file appears: the camera comes online at the next attempt and the backoff resets.
    generate_test_clip(missing, width=160, height=120, fps=10, seconds=1)
    h = wait_health(src, lambda h: h.state == CameraState.ONLINE and h.frames_decoded > 0, 5)
    assert h.message == "" and h.retry_in_s is None
    src.stop()


def test_resolution_change_is_reported(tmp_path: Path, sources: list[CameraSource]) -> None:
    small = generate_test_clip(tmp_path / "small.ts", width=160, height=120, fps=10, seconds=1)
    large = generate_test_clip(
        tmp_path / "large.ts", width=320, height=240, fps=10, seconds=1, start_index=10
    )
    both = tmp_path / "both.ts"
    # MPEG-TS concatenates: one stream whose picture size changes mid-way, as a reconfigured camera.
    both.write_bytes(small.read_bytes() + large.read_bytes())
    src = CameraSource("resize", str(both), analysis_fps=10)
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.resolution_changes >= 1, 10)
    assert src.running
    assert h.message == "resolution changed 160x120 -> 320x240", h
    assert h.state == CameraState.ONLINE
    assert (h.width, h.height) == (320, 240)
    frame = src.latest()
    assert frame is not None and frame.image.shape == (240, 320, 3) and frame.width == 320
    assert read_frame_counter(frame.image) >= 10
    # The loop back to the start is a change too.
    h = wait_health(src, lambda h: h.resolution_changes >= 2, 10)
    assert h.message == "resolution changed 320x240 -> 160x120"
    src.stop()


def test_demo_source_plays_the_demo_clip(sources: list[CameraSource]) -> None:
    src = CameraSource("demo", "demo://vtest", analysis_fps=5)
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.frames_decoded >= 3, 30)
    frame = src.latest()
    assert frame is not None
    assert h.state in (CameraState.ONLINE, CameraState.STARTING)
    assert (frame.width, frame.height) in ((768, 576), (640, 480))  # vtest.avi or the generated fallback
    assert frame.image.std() > 5
    src.stop()


def test_stop_is_idempotent_and_the_source_restarts(clip: Clip, sources: list[CameraSource]) -> None:
    path = clip("restart_10fps.mp4", width=160, height=120, fps=10, seconds=1)
    src = CameraSource("again", str(path))
    sources.append(src)
    assert src.stop() is True  # never started
    src.start()
    src.start()  # already running: no second thread
    assert _camera_threads().count("camera-again") == 1
    assert wait_until(lambda: src.health().frames_decoded >= 2, 10)
    assert src.stop() is True and src.stop() is True
    before = src.health().frames_decoded
    src.start()
    assert wait_until(lambda: src.health().frames_decoded >= before + 2, 10)
    assert src.stop() is True
    assert "camera-again" not in _camera_threads()


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="analysis_fps"):
        CameraSource("x", "/tmp/a.mp4", analysis_fps=0)
    with pytest.raises(ValueError, match="scheme"):
        CameraSource("x", "gopher://a")
