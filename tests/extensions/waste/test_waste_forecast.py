"""extensions.waste.forecast: rates and threshold crossings on series with a known answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from smartcity.extensions.waste import FillReading, fit, fit_readings

MONDAY = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday, 00:00 UTC


def _simulate(
    rate_per_day: list[float], days: int, empty_above: float, noise: float = 0.0, dropout: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hourly readings of a bin that fills at rate_per_day[weekday] (even over the day) and is emptied above a level."""
    rng = np.random.default_rng(seed)
    ts, levels = [], []
    level = 0.05
    for h in range(days * 24):
        t = MONDAY + timedelta(hours=h)
        if level > empty_above:
            level = 0.02
        keep = rng.random() >= dropout
        if keep:
            ts.append(t.timestamp())
            levels.append(level + rng.normal(0.0, noise) if noise else level)
        level += rate_per_day[t.weekday()] / 24.0
    return np.array(ts), np.array(levels)


def test_constant_fill_with_emptyings_gives_the_rate_and_the_exact_crossing() -> None:
    ts, lv = _simulate([0.24] * 7, days=21, empty_above=0.9)
    fc = fit(ts, lv)
    assert fc.rates == pytest.approx(np.full(168, 0.01), abs=1e-9)
    t0 = MONDAY + timedelta(days=21, hours=10)
    assert fc.crossing(0.5, t0, 0.8) == t0 + timedelta(hours=30)
    assert fc.level_at(0.5, t0, t0 + timedelta(hours=12, minutes=30)) == pytest.approx(0.625)
    assert fc.crossing(0.5, t0, 0.8, horizon_h=29.5) is None


def test_weekday_effects_survive_noise_dropouts_and_an_outage() -> None:
    truth = [0.12, 0.12, 0.12, 0.12, 0.12, 0.48, 0.24]  # a Saturday market, a busy Sunday
    ts, lv = _simulate(truth, days=28, empty_above=0.85, noise=0.02, dropout=0.15, seed=3)
    outage = (ts > (MONDAY + timedelta(days=9)).timestamp()) & (ts < (MONDAY + timedelta(days=9, hours=20)).timestamp())
    ts, lv = ts[~outage], lv[~outage]
    daily = fit(ts, lv).daily_fill()
    # one bin, noise a sixth of a weekday's fill: single days scatter, pooled weekdays and the market day do not
    assert daily[:5].mean() == pytest.approx(0.12, rel=0.1)
    assert daily[5] == pytest.approx(0.48, rel=0.1)
    assert daily[6] == pytest.approx(0.24, rel=0.2)
    assert daily[5] > 3 * daily[:5].max()


def test_a_single_spike_is_not_an_emptying() -> None:
    ts, lv = _simulate([0.24] * 7, days=4, empty_above=2.0)  # never emptied: 0.05 .. 0.85 in 80 h
    ts, lv = ts[:80], lv[:80].copy()
    lv[50] = 0.0  # one lid echo reads as empty
    assert fit(ts, lv).rates.mean() == pytest.approx(0.01, rel=1e-6)


def test_a_full_bin_does_not_drag_the_rate_down() -> None:
    ts, lv = _simulate([0.48] * 7, days=7, empty_above=5.0)
    fc = fit(ts, np.minimum(lv, 1.0))  # the sensor stops at full
    assert fc.rates.mean() == pytest.approx(0.02, rel=0.02)


def test_no_usable_interval_gives_the_prior() -> None:
    fc = fit([0.0], [0.3], prior_rate=0.004)
    assert fc.hours_observed == 0.0
    assert fc.rates == pytest.approx(np.full(168, 0.004))


def test_hours_are_local_time() -> None:
    # a bin filled only between 08:00 and 09:00 Berlin time (06:00-07:00 UTC in summer)
    berlin = ZoneInfo("Europe/Berlin")
    readings, level = [], 0.0
    for h in range(24 * 14):
        t = MONDAY + timedelta(hours=h)
        readings.append(FillReading("B", min(level, 1.0), t, f"m{h}", "native"))
        if t.astimezone(berlin).hour == 8:
            level += 0.1
        if level > 0.9:
            level = 0.0
    fc = fit_readings(readings, tz=berlin)
    by_hour = fc.rates.reshape(7, 24).mean(axis=0)
    assert int(np.argmax(by_hour)) == 8
    assert by_hour[8] == pytest.approx(0.1, rel=0.2)
    # starting 07:30 local, 0.1 more arrives during 08:00-09:00: 0.05 is reached at 08:30 local
    start = datetime(2026, 5, 18, 7, 30, tzinfo=berlin)
    hit = fc.crossing(0.0, start, 0.05)
    assert hit is not None
    assert hit.astimezone(berlin).hour == 8
