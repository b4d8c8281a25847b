"""The simulated city of bench/waste.py: bins, their true fill, the sensors' view of it, and the scoring.

The city (seeded, deterministic):
- 1,000 bins (by default) on a 10 km x 8 km town around 52.50 N 13.40 E: 80 % in 14 neighbourhood
  clusters (Gaussian, sigma 500 m), 20 % scattered; one depot on the western edge.
- Streams: 70 % residual, 30 % recycling. Containers of 240 l (40 %), 660 l (30 %), 1,100 l (30 %);
  service 60 s (240 l) or 120 s; 10 % of bins (pedestrian zones) may be emptied only 06:00-10:00.
- Fill: a base rate per bin, log-normal (median 0.10 of the bin a day, sigma 0.6, clipped to
  0.02..0.5), times a weekday profile of its neighbourhood (residential: weekends 1.4x;
  commercial: weekdays 1.25x, Sunday 0.3x), times a day-to-day log-normal factor (sigma 0.25),
  spread over the day by an hourly profile (little at night, peaks at 08-10 h and 17-21 h).
  Events: three neighbourhoods hold a market (one on Wednesdays, two on Saturdays); their bins
  fill 3x on market day.
- Sensors: one reading an hour of min(level, 1) plus Gaussian noise (sigma 0.03); 10 % of
  readings lost at random, and each sensor has a 3 % chance a day of a whole-day outage;
  0.2 % of readings are lid echoes that read as empty.
- Fleet: 10 trucks of 60,000 l of bin volume (a 20 m3 rear loader compacting 3:1; 7 residual,
  3 recycling), shift 06:00-14:00 Monday to Saturday, at most one trip back to the depot to unload. Travel: haversine x 1.3 at
  25 km/h.
- Overflow: a bin-day is an overflow when the bin's true level reaches 1.0 at any hour of that day.
Both policies see the same city, the same true fill and the same sensor noise; a 14-day
warm-up (bins emptied when 90 % full) gives the sensors a history before day 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from smartcity.extensions.waste import Bin, Depot, Plan, TimeWindow, Truck

F64 = npt.NDArray[np.float64]
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: day 0 of the evaluation
HOURLY = np.array([0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.7, 1.6, 1.3, 1.2, 1.3, 1.2, 1.1, 1.1, 1.3, 1.6, 1.8, 1.7,
                   1.4, 1.0, 0.6, 0.4])  # fmt: skip
RESIDENTIAL = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.4, 1.4])
COMMERCIAL = np.array([1.25, 1.25, 1.25, 1.25, 1.25, 1.0, 0.3])


@dataclass
class City:
    bins: list[Bin]
    depot: Depot
    trucks: list[Truck]
    warmup_days: int
    days: int
    inc: F64  # true fill per bin per hour, shape (n, (warmup + days) * 24)
    noise: F64  # sensor noise per reading, same shape
    seen: npt.NDArray[np.bool_]  # reading delivered, same shape
    echo: npt.NDArray[np.bool_]  # reading is a lid echo (reads 0), same shape

    @property
    def n(self) -> int:
        return len(self.bins)

    def hour_time(self, h: int) -> datetime:
        """Wall time of absolute hour index h (0 = first warm-up hour)."""
        return START + timedelta(hours=h - self.warmup_days * 24)


def make_city(n_bins: int = 1000, days: int = 28, warmup_days: int = 14, seed: int = 7, n_trucks: int = 10) -> City:
    rng = np.random.default_rng(seed)
    lat0, lon0 = 52.50, 13.40
    m_lat = 1 / 111_320.0
    m_lon = 1 / (111_320.0 * math.cos(math.radians(lat0)))
    n_hoods = 14
    centres = rng.uniform([-4000, -3000], [4500, 3000], size=(n_hoods, 2))
    commercial = rng.random(n_hoods) < 0.35
    hood = rng.integers(0, n_hoods, n_bins)
    scattered = rng.random(n_bins) < 0.2
    xy = centres[hood] + rng.normal(0, 500, (n_bins, 2))
    xy[scattered] = rng.uniform([-5000, -4000], [5000, 4000], size=(int(scattered.sum()), 2))
    xy = np.clip(xy, [-5000, -4000], [5000, 4000])
    cap = rng.choice([240, 660, 1100], size=n_bins, p=[0.4, 0.3, 0.3])
    stream = np.where(rng.random(n_bins) < 0.7, "residual", "recycling")
    narrow = rng.random(n_bins) < 0.1
    bins = [
        Bin(
            id=f"B{i:04d}",
            lat=lat0 + float(xy[i, 1]) * m_lat,
            lon=lon0 + float(xy[i, 0]) * m_lon,
            capacity_l=int(cap[i]),
            stream=str(stream[i]),
            access=TimeWindow(start=time(6), end=time(10)) if narrow[i] else TimeWindow(),
            service_s=60 if cap[i] == 240 else 120,
            threshold=0.8,
        )
        for i in range(n_bins)
    ]
    depot = Depot(id="depot", lat=lat0, lon=lon0 - 5200 * m_lon)
    n_res = round(n_trucks * 0.7)
    shift = TimeWindow(start=time(6), end=time(14))
    trucks = [
        Truck(id="residual", depot="depot", stream="residual", capacity_l=60_000, count=n_res, shift=shift, max_reloads=1),
        Truck(id="recycling", depot="depot", stream="recycling", capacity_l=60_000, count=n_trucks - n_res, shift=shift,
              max_reloads=1),
    ]  # fmt: skip

    base = np.clip(np.exp(rng.normal(math.log(0.10), 0.6, n_bins)), 0.02, 0.5)
    weekday = np.where(commercial[hood][:, None], COMMERCIAL[None, :], RESIDENTIAL[None, :])
    weekday[scattered] = RESIDENTIAL
    market = np.ones((n_bins, 7))
    market_hoods = rng.choice(n_hoods, 3, replace=False)
    for k, day in zip(market_hoods, (2, 5, 5)):
        market[(hood == k) & ~scattered, day] = 3.0
    total_days = warmup_days + days
    n_h = total_days * 24
    day_factor = np.exp(rng.normal(0, 0.25, (n_bins, total_days)))
    wd = np.array([(START + timedelta(days=d - warmup_days)).weekday() for d in range(total_days)])
    per_day = base[:, None] * weekday[:, wd] * market[:, wd] * day_factor  # (n, days)
    inc = (per_day[:, :, None] * (HOURLY / HOURLY.sum())[None, None, :]).reshape(n_bins, n_h)
    noise = rng.normal(0, 0.03, (n_bins, n_h))
    seen = rng.random((n_bins, n_h)) >= 0.10
    outage = np.repeat(rng.random((n_bins, total_days)) < 0.03, 24, axis=1)
    seen &= ~outage
    echo = rng.random((n_bins, n_h)) < 0.002
    return City(bins, depot, trucks, warmup_days, days, inc, noise, seen, echo)


@dataclass
class Outcome:
    """What a policy did over the evaluation days."""

    km: float = 0.0
    overflow_bin_days: int = 0
    collections: int = 0
    missed_due: int = 0
    plan_days: int = 0


class Simulator:
    """Advances the true levels hour by hour, empties bins when routes reach them, and records sensor readings."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.level = np.zeros(city.n)
        self.readings = np.full(city.inc.shape, np.nan)
        self.levels = np.zeros(city.inc.shape)  # true level at the end of each hour (before an emptying)
        self.hour = 0

    def run_day(self, collections: dict[int, list[int]]) -> None:
        """One day of 24 hours; `collections` maps an hour of the day to the bins emptied then."""
        c = self.city
        for hh in range(24):
            h = self.hour
            self.level += c.inc[:, h]
            self.levels[:, h] = self.level
            for b in collections.get(hh, []):
                self.level[b] = 0.0
            read = np.where(c.echo[:, h], 0.0, np.clip(np.minimum(self.level, 1.0) + c.noise[:, h], 0.0, 1.05))
            self.readings[:, h] = np.where(c.seen[:, h], read, np.nan)
            self.hour += 1

    def overflow_bin_days(self) -> int:
        """Overflow bin-days of the evaluation days (after the warm-up)."""
        return overflow_bin_days(self.levels[:, self.city.warmup_days * 24 : self.hour])

    def warm_up(self) -> None:
        """The warm-up: a bin is emptied at 10:00 once its level passed 0.9 (an attentive crew)."""
        for _ in range(self.city.warmup_days):
            due = [int(b) for b in np.flatnonzero(self.level + self.city.inc[:, self.hour : self.hour + 10].sum(axis=1) > 0.9)]
            self.run_day({10: due})


def collections_of(plan: Plan, index: dict[str, int]) -> dict[int, list[int]]:
    """The plan's stops by local hour of arrival."""
    out: dict[int, list[int]] = {}
    for r in plan.routes:
        for s in r.stops:
            out.setdefault(s.arrive.hour, []).append(index[s.bin_id])
    return out


def overflow_bin_days(levels: F64) -> int:
    """Bin-days with a level at or above 1.0 in any hour; `levels` is (bins, days * 24) true levels."""
    n, h = levels.shape
    return int((levels.reshape(n, h // 24, 24) >= 1.0).any(axis=2).sum())


def parse_bks(sol_text: str) -> int:
    """The best-known cost from a CVRPLIB .sol file (its `Cost N` line)."""
    for line in sol_text.splitlines():
        if line.strip().lower().startswith("cost"):
            return round(float(line.split()[1]))
    raise ValueError("no Cost line")


def gap_pct(cost: float, bks: float) -> float:
    return 100.0 * (cost - bks) / bks


# the patterns a fixed round uses, with the longest gap (days) between two visits of each
PATTERNS: dict[int, tuple[list[int], int]] = {1: ([0], 7), 2: ([0, 3], 4), 3: ([0, 2, 4], 3), 6: ([0, 1, 2, 3, 4, 5], 2)}


def fixed_weekdays(freq: int, sector: int) -> list[int]:
    """Service weekdays (Monday = 0, Saturday = 5) of a bin visited `freq` times a week, staggered by sector."""
    days, _ = PATTERNS[freq]
    shift = {1: sector % 6, 2: sector % 3, 3: sector % 2, 6: 0}[freq]
    return [d + shift for d in days]


def interval_fills(daily: F64, weekdays: list[int]) -> list[tuple[int, float]]:
    """For each service weekday, the fill expected since the previous visit (`daily`: fill per weekday)."""
    out = []
    for k, d in enumerate(weekdays):
        prev = weekdays[k - 1] if k else weekdays[-1] - 7
        out.append((d, float(sum(daily[(prev + j) % 7] for j in range(1, d - prev + 1)))))
    return out


def sectors(city: City, n: int = 6) -> npt.NDArray[np.int64]:
    """A bin's sector: its bearing from the town centre cut into n equal slices."""
    lat = np.array([b.lat for b in city.bins])
    lon = np.array([b.lon for b in city.bins])
    ang = np.arctan2(lat - lat.mean(), (lon - lon.mean()) * math.cos(math.radians(lat.mean())))
    out: npt.NDArray[np.int64] = ((ang + math.pi) / (2 * math.pi) * n).astype(np.int64) % n
    return out

