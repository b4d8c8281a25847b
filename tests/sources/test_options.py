"""Source options, the reconnect backoff and URL resolution (pure, no I/O)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from smartcity.sources import Backoff, SourceOptions, resolve_target


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
