"""Fill-rate forecast per bin by weekday and hour of day, and when each bin crosses its threshold.

The model: a bin fills at `rate[weekday, hour]` (level per hour, local time). It is estimated
from a bin's level series, robustly:
- emptying: an interval whose level drops by more than `reset_drop` is a collection, not a
  negative fill, and is left out; so is an interval that starts at the sensor's ceiling (a full
  bin stops rising, which would bias the rate down);
- noise: a reading that jumps away from two agreeing neighbours (a lid echo) is replaced by their
  mean, and rates are sums of level increments over sums of hours, so reading noise cancels
  along a run of readings;
- dropouts: an interval longer than `max_gap_h` is left out; shorter gaps are spread evenly over
  the hours they span;
- few samples per (weekday, hour) cell: the cell is shrunk towards a product model
  `day_total[weekday] * hour_share[hour]`, which pools four weeks of a weekday and every day
  of an hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from .sensors import FillReading

HOURS_PER_WEEK = 168
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """How readings are turned into rates; the defaults suit hourly ultrasonic readings."""

    reset_drop: float = 0.15  # a drop larger than this (level fraction) is an emptying
    ceiling: float = 0.97  # at or above this a bin is treated as full (its rise is clipped)
    max_gap_h: float = 12.0  # longer gaps between readings are not attributed to hours
    shrink_h: float = 6.0  # hours of evidence a (weekday, hour) cell needs to outweigh the model
    pool_shrink_h: float = 2.0  # the same for a whole weekday or hour of day (pooled, so less is needed)
    min_rate: float = 0.0  # a bin never empties itself: rates are floored here


@dataclass(frozen=True, slots=True)
class FillForecast:
    """A bin's fill rate (level per hour) for each of the 168 hours of the local week (Monday 00h first)."""

    rates: FloatArray  # shape (168,)
    tz: tzinfo
    hours_observed: float  # hours of usable intervals the rates rest on (0: no data, rates are the prior)

    def level_at(self, level: float, t0: datetime, t: datetime) -> float:
        """The level at `t` of a bin that was at `level` at `t0` (not capped at 1: >1 means overflowing)."""
        if t <= t0:
            return level
        return level + float(self._cumulative(t0, (t - t0).total_seconds() / 3600.0)[-1])

    def crossing(self, level: float, t0: datetime, threshold: float, horizon_h: float = 24 * 14) -> datetime | None:
        """When a bin at `level` at `t0` reaches `threshold`; None if not within `horizon_h` hours."""
        if level >= threshold:
            return t0
        cum = self._cumulative(t0, horizon_h)
        need = threshold - level
        k = int(np.searchsorted(cum, need, side="left"))
        if k >= len(cum):
            return None
        # cum[k] is the fill at the end of step k; interpolate within that step
        prev = float(cum[k - 1]) if k > 0 else 0.0
        step_start, step_len = self._steps(t0, horizon_h)
        seg = float(cum[k]) - prev
        frac = 0.0 if seg <= 0 else (need - prev) / seg
        return t0 + timedelta(hours=float(step_start[k]) + frac * float(step_len[k]))

    def _steps(self, t0: datetime, horizon_h: float) -> tuple[FloatArray, FloatArray]:
        # steps aligned to local hour boundaries: a partial first hour, whole hours, a partial last
        first = 1.0 - (t0.astimezone(self.tz).minute * 60 + t0.second) / 3600.0
        first = min(first, horizon_h)
        n_full = max(0, math.ceil(horizon_h - first))
        starts = np.concatenate([[0.0], first + np.arange(n_full, dtype=np.float64)])
        lens = np.concatenate([[first], np.ones(n_full)])
        lens[-1] = min(lens[-1], horizon_h - starts[-1]) if n_full else lens[-1]
        return starts, lens

    def _cumulative(self, t0: datetime, horizon_h: float) -> FloatArray:
        starts, lens = self._steps(t0, horizon_h)
        b0 = bucket_of(t0, self.tz)
        buckets = (b0 + np.arange(len(starts))) % HOURS_PER_WEEK
        out: FloatArray = np.cumsum(self.rates[buckets] * lens)
        return out

    def daily_fill(self) -> FloatArray:
        """Expected fill per local weekday (Monday first), level fraction per day."""
        out: FloatArray = self.rates.reshape(7, 24).sum(axis=1)
        return out


def bucket_of(t: datetime, tz: tzinfo) -> int:
    local = t.astimezone(tz)
    return local.weekday() * 24 + local.hour


def _buckets(ts: FloatArray, tz: tzinfo) -> FloatArray:
    """Fractional hour-of-week (0..168) of epoch seconds, in local time (offset looked up per day)."""
    days = np.floor(ts / 86400.0)
    offsets = np.zeros_like(ts)
    for d in ([] if tz is UTC else np.unique(days)):
        noon = datetime.fromtimestamp(float(d) * 86400.0 + 43200.0, UTC)
        off = noon.astimezone(tz).utcoffset()
        offsets[days == d] = off.total_seconds() if off is not None else 0.0
    local = ts + offsets
    day = np.floor(local / 86400.0)
    weekday = (day + _EPOCH_WEEKDAY) % 7
    out: FloatArray = weekday * 24.0 + (local - day * 86400.0) / 3600.0
    return out


def _despike(x: FloatArray, jump: float) -> FloatArray:
    """Replaces a reading that jumps away from two neighbours that agree with each other (a lid echo).

    Unlike a running median this leaves an emptying step untouched, so no fill is lost next to it.
    """
    out = x.copy()
    if len(x) < 3:
        return out
    left, mid, right = x[:-2], x[1:-1], x[2:]
    spike = (np.abs(mid - left) > jump) & (np.abs(mid - right) > jump) & (np.abs(right - left) <= jump)
    out[1:-1][spike] = (left[spike] + right[spike]) / 2.0
    return out


def fit(
    ts: Sequence[float] | FloatArray,
    levels: Sequence[float] | FloatArray,
    tz: tzinfo = UTC,
    config: ForecastConfig | None = None,
    prior_rate: float = 0.0,
) -> FillForecast:
    """Rates from a bin's readings: `ts` epoch seconds, `levels` 0..1 (any order; duplicates of a time dropped).

    `prior_rate` (level per hour) is used for a bin with no usable interval yet (a new sensor):
    for instance the mean rate of bins of its stream.
    """
    cfg = config or ForecastConfig()
    t = np.asarray(ts, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if t.shape != lv.shape or t.ndim != 1:
        raise ValueError("ts and levels must be 1-D and of equal length")
    order = np.argsort(t, kind="stable")
    t, lv = t[order], lv[order]
    if len(t):
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, lv = t[keep], lv[keep]
    lv = _despike(lv, cfg.reset_drop)
    if len(t) < 2:
        return FillForecast(np.full(HOURS_PER_WEEK, max(prior_rate, cfg.min_rate)), tz, 0.0)

    dt_h = np.diff(t) / 3600.0
    dl = np.diff(lv)
    ok = (dl >= -cfg.reset_drop) & (dt_h <= cfg.max_gap_h) & (lv[:-1] < cfg.ceiling)
    t0, dt_h, dl = t[:-1][ok], dt_h[ok], dl[ok]
    if len(t0) == 0:
        return FillForecast(np.full(HOURS_PER_WEEK, max(prior_rate, cfg.min_rate)), tz, 0.0)

    # split every interval into sub-steps of at most one hour, each attributed to its midpoint's cell
    n_sub = np.maximum(1, np.ceil(dt_h - 1e-9)).astype(np.int64)
    idx = np.repeat(np.arange(len(t0)), n_sub)
    first = np.cumsum(n_sub) - n_sub
    k = np.arange(len(idx)) - np.repeat(first, n_sub)
    sub_h = dt_h[idx] / n_sub[idx]
    mid = t0[idx] + (k + 0.5) * sub_h * 3600.0
    cell = np.floor(_buckets(mid, tz)).astype(np.int64) % HOURS_PER_WEEK
    sum_l = np.bincount(cell, weights=dl[idx] / n_sub[idx], minlength=HOURS_PER_WEEK)
    sum_h = np.bincount(cell, weights=sub_h, minlength=HOURS_PER_WEEK)

    total_h = float(sum_h.sum())
    overall = max(float(sum_l.sum()) / total_h, 0.0)
    # product model: per-weekday level of fill times per-hour-of-day share, each shrunk to the overall rate
    wd_l, wd_h = sum_l.reshape(7, 24).sum(axis=1), sum_h.reshape(7, 24).sum(axis=1)
    day_rate = (wd_l + cfg.pool_shrink_h * overall) / (wd_h + cfg.pool_shrink_h)
    hr_l, hr_h = sum_l.reshape(7, 24).sum(axis=0), sum_h.reshape(7, 24).sum(axis=0)
    hour_rate = (hr_l + cfg.pool_shrink_h * overall) / (hr_h + cfg.pool_shrink_h)
    shape = hour_rate / overall if overall > 0 else np.ones(24)
    model = np.clip((day_rate[:, None] * shape[None, :]).reshape(HOURS_PER_WEEK), 0.0, None)
    raw = ((sum_l + cfg.shrink_h * model) / (sum_h + cfg.shrink_h)).reshape(7, 24)
    # noise makes some cells negative; flooring them alone would bias every day upwards, so the
    # floored cells are rescaled to keep each weekday's total (which pools many hours) unchanged
    floored = np.maximum(raw, 0.0)
    kept = floored.sum(axis=1)
    want = np.maximum(raw.sum(axis=1), 0.0)
    scale = np.divide(want, kept, out=np.zeros(7), where=kept > 0)
    rates = (floored * scale[:, None]).reshape(HOURS_PER_WEEK)
    return FillForecast(np.maximum(rates, cfg.min_rate), tz, total_h)


def fit_readings(
    readings: Sequence[FillReading],
    tz: tzinfo = UTC,
    config: ForecastConfig | None = None,
    prior_rate: float = 0.0,
) -> FillForecast:
    """`fit` over one bin's readings."""
    ts = [r.t.timestamp() for r in readings]
    return fit(ts, [r.level for r in readings], tz, config, prior_rate)
