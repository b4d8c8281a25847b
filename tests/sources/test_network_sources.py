"""Camera sources over the network on loopback: a real RTSP server (GStreamer), HTTP, refused and dead servers."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from source_helpers import RtspServer, wait_health
from testkit import free_port

from smartcity.core.events import CameraState
from smartcity.sources import CameraSource, SourceOptions, read_frame_counter

Clip = Callable[..., Path]

FAST_RETRY = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "open_timeout_s": 3.0, "read_timeout_s": 1.5}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_stream_survives_a_server_that_disappears_and_comes_back(
    transport: str, rtsp_server: RtspServer, sources: list[CameraSource]
) -> None:
    opts = SourceOptions(rtsp_transport=transport, **FAST_RETRY)  # type: ignore[arg-type]
    src = CameraSource("street", rtsp_server.url, analysis_fps=5, options=opts)
    sources.append(src)
    src.start()

    h = wait_health(src, lambda h: h.frames_decoded >= 15, 20)
    assert h.state == CameraState.ONLINE, h
    assert (h.width, h.height) == (320, 240)
    assert h.nominal_fps == pytest.approx(15, abs=1)
    assert h.reconnects == 0 and h.decode_errors == 0
    frame = src.latest()
    assert frame is not None and frame.image.shape == (240, 320, 3)
    counter = read_frame_counter(frame.image)
    assert 0 <= counter < 15 * 60  # a real picture of the served clip, decoded intact
    analysed = src.take_for_analysis()
    assert analysed is not None and analysed.camera_id == "street"

    # The server goes away (TCP: a clean shutdown; UDP: a crash, so only silence tells):
    # the camera goes offline with a reason, and retries.
    rtsp_server.stop(crash=transport == "udp")
    h = wait_health(src, lambda h: h.state == CameraState.OFFLINE, 15)
    expected = {"tcp": ("stream ended",), "udp": ("no data for 1.5s", "stream ended")}[transport]
    assert h.message.startswith(expected), h
    h = wait_health(src, lambda h: h.reconnects >= 2, 10)
    assert h.message == "connection refused", h
    decoded_while_down = h.frames_decoded

    # It comes back on the same address: frames resume without restarting the source.
    rtsp_server.start()
    h = wait_health(
        src, lambda h: h.state == CameraState.ONLINE and h.frames_decoded >= decoded_while_down + 10, 20
    )
    assert h.message == ""
    frame = src.latest()
    assert frame is not None and frame.index >= decoded_while_down
    assert src.stop() is True


def test_rtsp_wrong_path_is_reported(rtsp_server: RtspServer, sources: list[CameraSource]) -> None:
    url = rtsp_server.url.replace("/cam", "/no-such-stream")
    src = CameraSource("wrong", url, options=SourceOptions(**FAST_RETRY))  # type: ignore[arg-type]
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.state == CameraState.OFFLINE, 15)
    assert h.message == f"not found (404): {url}"
    src.stop()


def test_connection_refused_is_offline_with_backoff(sources: list[CameraSource]) -> None:
    port = free_port()
    opts = SourceOptions(backoff_initial_s=0.2, backoff_max_s=0.8, backoff_jitter=0.0)
    src = CameraSource("refused", f"rtsp://user:s3cret@127.0.0.1:{port}/cam", options=opts)
    sources.append(src)
    src.start()
    time.sleep(1.7)
    h = src.health()
    assert h.state == CameraState.OFFLINE
    assert h.message == "connection refused"
    assert 2 <= h.reconnects <= 4, h  # 0.2, 0.4, 0.8 s apart: backoff, not a busy loop
    assert src.stop() is True


def test_dead_server_times_out_instead_of_hanging(sources: list[CameraSource]) -> None:
    # A server that accepts TCP connections (in the kernel backlog) but never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        opts = SourceOptions(open_timeout_s=1.0, read_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.2)
        src = CameraSource("silent", f"rtsp://admin:s3cret@127.0.0.1:{port}/cam", options=opts)
        sources.append(src)
        src.start()
        h = wait_health(src, lambda h: h.state == CameraState.OFFLINE, 10)
        assert h.message == f"timed out after 1s opening rtsp://admin:***@127.0.0.1:{port}/cam"
        assert "s3cret" not in h.message
        t0 = time.monotonic()
        assert src.stop(timeout=5) is True
        assert time.monotonic() - t0 < 3.0  # bounded by the open timeout, not forever


def test_live_http_stream_is_decoded_and_reopened_when_it_ends(
    http_server: str, clip: Clip, sources: list[CameraSource]
) -> None:
    path = clip("http_10fps.ts", width=160, height=120, fps=10, seconds=2)
    url = f"{http_server}/live/{path.name}"  # streamed at its bit rate for 2 s, then closed
    src = CameraSource("http", url, analysis_fps=5, options=SourceOptions(**FAST_RETRY))  # type: ignore[arg-type]
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.frames_decoded >= 5, 15)
    assert h.state == CameraState.ONLINE and (h.width, h.height) == (160, 120)
    assert h.frames_decoded < 20  # arriving live, not all at once
    frame = src.take_for_analysis()
    assert frame is not None and read_frame_counter(frame.image) < 20
    h = wait_health(src, lambda h: h.reconnects >= 1, 15)
    assert h.frames_decoded >= 15  # (nearly) the whole first stream arrived
    h = wait_health(src, lambda h: h.frames_decoded >= 25 and h.state == CameraState.ONLINE, 15)
    src.stop()


def test_a_camera_delivering_half_its_frame_rate_is_degraded(
    http_server: str, clip: Clip, sources: list[CameraSource]
) -> None:
    path = clip("slow_10fps.ts", width=160, height=120, fps=10, seconds=4)
    url = f"{http_server}/live/{path.name}?seconds=8"  # 10 fps nominal, 5 fps delivered
    opts = SourceOptions(health_window_s=1.0, **FAST_RETRY)  # type: ignore[arg-type]
    src = CameraSource("slow", url, options=opts)
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.state == CameraState.DEGRADED, 15)
    assert re.fullmatch(r"input \d\.\d fps, expected 10 fps", h.message), h
    assert 2.0 <= h.input_fps <= 7.5, h
    assert h.decode_errors == 0
    src.stop()


def test_http_not_found_is_reported(http_server: str, sources: list[CameraSource]) -> None:
    src = CameraSource("http404", f"{http_server}/missing.ts", options=SourceOptions(**FAST_RETRY))  # type: ignore[arg-type]
    sources.append(src)
    src.start()
    h = wait_health(src, lambda h: h.state == CameraState.OFFLINE and h.reconnects >= 1, 10)
    assert h.message == f"not found (404): {http_server}/missing.ts"
    src.stop()
