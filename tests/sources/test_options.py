"""Source options, the reconnect backoff and URL resolution (pure, no I/O)."""

from __future__ import annotations

import random

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from smartcity.sources import Backoff, SourceOptions, describe_open_error, resolve_target


def test_options_reject_unknown_keys_and_bad_bounds() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        SourceOptions.model_validate({"rtsp_transprot": "udp"})
    with pytest.raises(ValidationError, match="rtsp_transport"):
        SourceOptions.model_validate({"rtsp_transport": "http"})
    with pytest.raises(ValidationError, match="open_timeout_s"):
        SourceOptions(open_timeout_s=0)
    with pytest.raises(ValidationError, match="backoff_max_s"):
        SourceOptions(backoff_initial_s=5, backoff_max_s=1)


def test_every_option_is_described() -> None:
    for name, field in SourceOptions.model_fields.items():
        assert field.description, name


def test_backoff_grows_exponentially_to_the_cap_without_jitter() -> None:
    b = Backoff(0.5, 4.0, multiplier=2.0, jitter=0.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.failures == 6
    b.reset()
    assert b.failures == 0
    assert b.next_delay() == 0.5


def test_backoff_jitter_spreads_delays_of_many_cameras() -> None:
    rng = random.Random(7)
    delays = [Backoff(1.0, 30.0, jitter=0.5, rng=rng).next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    # Not all cameras retry in the same instant.
    assert max(delays) - min(delays) > 0.3
    assert len({round(d, 3) for d in delays}) > 100


@given(
    initial=st.floats(0.01, 10),
    ratio=st.floats(1, 100),
    multiplier=st.floats(1, 5),
    jitter=st.floats(0, 1),
    n=st.integers(1, 200),
)
def test_backoff_delay_stays_within_bounds(
    initial: float, ratio: float, multiplier: float, jitter: float, n: int
) -> None:
    b = Backoff(initial, initial * ratio, multiplier=multiplier, jitter=jitter, rng=random.Random(n))
    previous_nominal = 0.0
    for i in range(1, n + 1):
        d = b.next_delay()
        nominal = b.nominal(i)
        assert nominal >= previous_nominal
        assert nominal <= initial * ratio
        assert nominal * (1 - jitter) - 1e-9 <= d <= nominal + 1e-9
        previous_nominal = nominal


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(0, 1)
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(2, 1)


def test_resolve_target_kinds() -> None:
    t = resolve_target("file:///srv/video/a.mp4")
    assert (t.scheme, t.path, t.is_file) == ("file", "/srv/video/a.mp4", True)
    t = resolve_target("file://data/a%20b.mp4")
    assert t.path == "data/a b.mp4"
    t = resolve_target("/tmp/x.ts")
    assert (t.scheme, t.path) == ("file", "/tmp/x.ts")
    t = resolve_target("demo://vtest")
    assert (t.scheme, t.is_file) == ("demo", True)
    t = resolve_target("rtsp://admin:hunter2@10.1.2.3:554/stream1")
    assert (t.scheme, t.is_file) == ("rtsp", False)
    assert t.path == "rtsp://admin:hunter2@10.1.2.3:554/stream1"
    assert "hunter2" not in t.display
    assert t.display == "rtsp://admin:***@10.1.2.3:554/stream1"
    with pytest.raises(ValueError, match="unsupported camera URL scheme 'ftp'"):
        resolve_target("ftp://example.org/a.mp4")
    with pytest.raises(ValueError, match="empty"):
        resolve_target("  ")


@pytest.mark.parametrize(
    ("exc", "url", "expected"),
    [
        (
            av.error.ConnectionRefusedError(111, "Connection refused"),
            "rtsp://cam:554/s",
            "connection refused",
        ),
        (
            av.error.OSError(
                5, "Input/output error", "u", (16, "tcp", "Failed to resolve hostname cam7: unknown\n")
            ),
            "rtsp://u:pw@cam7:554/s",
            "unknown host: cam7",
        ),
        (
            av.error.HTTPNotFoundError(-1, "Server returned 404 Not Found"),
            "http://cam/x",
            "not found (404): http://cam/x",
        ),
        (
            av.error.HTTPUnauthorizedError(-1, "Server returned 401 Unauthorized"),
            "rtsp://u:pw@cam/x",
            "unauthorized (401): check the camera's user and password",
        ),
        (
            av.error.FileNotFoundError(2, "No such file or directory"),
            "/srv/a.mp4",
            "file not found: /srv/a.mp4",
        ),
        (
            av.error.InvalidDataError(-1, "Invalid data found", "f", (16, "mov", "moov atom not found\n")),
            "/srv/clips/a.mp4",
            "not a video: a.mp4 (moov atom not found)",
        ),
        (
            av.error.ExitError(-1, "Immediate exit requested"),
            "rtsp://u:pw@cam/x",
            "timed out after 5s opening rtsp://u:***@cam/x",
        ),
        # credentials never show, whether in the URL, FFmpeg's line or the exception's text
        (
            av.error.HTTPNotFoundError(-1, "Server returned 404 Not Found"),
            "http://cam/x?pwd=s3cret&ch=1",
            "not found (404): http://cam/x?pwd=***&ch=1",
        ),
        (
            av.error.InvalidDataError(
                -1, "Invalid data", "f", (16, "rtsp", "method DESCRIBE failed for rtsp://u:p@ss/w@cam/x?token=t0k\n")
            ),
            "rtsp://u:p@ss/w@cam/x?token=t0k",
            "invalid stream from rtsp://u:***@cam/x?token=*** (method DESCRIBE failed for rtsp://u:***@cam/x?token=***)",
        ),
        (
            RuntimeError("could not open 'rtsp://u:p%40ss@[fd00::7]:554/x' twice"),
            "rtsp://u:p%40ss@[fd00::7]:554/x",
            "cannot open rtsp://u:***@[fd00::7]:554/x: could not open 'rtsp://u:***@[fd00::7]:554/x' twice",
        ),
    ],
)
def test_open_errors_read_as_plain_words(exc: Exception, url: str, expected: str) -> None:
    assert (
        describe_open_error(exc, resolve_target(url), SourceOptions(open_timeout_s=5), elapsed_s=0.1)
        == expected
    )


def test_slow_failure_of_a_network_open_is_a_timeout() -> None:
    exc = av.error.InvalidDataError(-1, "Invalid data found when processing input")
    message = describe_open_error(
        exc, resolve_target("rtsp://cam/x"), SourceOptions(open_timeout_s=2), elapsed_s=2.0
    )
    assert message == "timed out after 2s opening rtsp://cam/x"
