"""The running state of the `waste` extension: ingestion, collections, forecasts, planning, the plan feed and its metrics.

Transport-free: the HTTP routes, GraphQL fields, MQTT loop and scheduler (extension.py, links.py)
all call into one `WasteService`.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from smartcity.core.clock import Clock
from smartcity.core.errors import SmartcityError
from smartcity.extensions.context import ExtensionTables

from . import store
from .bins import MAX_BINS, Bin
from .config import SensorFormat, WasteConfig
from .distances import DistanceSource, Haversine, RoadNetworkError
from .forecast import FillForecast, fit
from .planner import BinState, Plan, plan_day
from .plans import plan_to_json
from .sensors import FillReading, PayloadError, parse_native

Trigger = Literal["schedule", "demand"]
FEED_QUEUE = 16
FORECAST_TTL_S = 3600.0  # forecasts for the bins query are refitted at most hourly (plans refit always)


class PlanError(SmartcityError):
    """A plan that could not be made for a reason the city can fix (the road network, the fleet)."""


class BinRegistryError(ValueError):
    """A change of the registry through the API that cannot be made (named bin and reason)."""


class UnknownBin(ValueError):
    def __init__(self, bin_id: str) -> None:
        self.bin_id = bin_id
        super().__init__(f"unknown bin {bin_id!r}: not in the bin registry")


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one payload: stored, a duplicate, or rejected (with the reason and message)."""

    outcome: Literal["stored", "duplicate", "rejected"]
    reading: FillReading | None = None
    reason: str = ""
    message: str = ""


@dataclass
class WasteStats:
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    plans: Counter[str] = field(default_factory=Counter)
    plan_seconds_sum: float = 0.0
    plan_failures: int = 0
    days_off: int = 0  # scheduled runs for a weekday without collection: no plan stored or sent
    collections: int = 0
    pushes: Counter[str] = field(default_factory=Counter)  # "webhook:ok", "mqtt:failed", ...
    camera: Counter[str] = field(default_factory=Counter)  # overflow events: stored, duplicate, unknown_bin, invalid


class WasteMetrics(Collector):
    """The extension's Prometheus metrics (served on /metrics with the server's)."""

    def __init__(self, stats: WasteStats, bins: Mapping[str, Bin]) -> None:
        self.stats = stats
        self.bins = bins

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        yield CounterMetricFamily("smartcity_waste_readings_accepted", "Sensor readings stored", value=s.accepted)
        yield CounterMetricFamily("smartcity_waste_readings_duplicate", "Sensor readings already stored (redeliveries)", value=s.duplicates)
        rejected = CounterMetricFamily("smartcity_waste_readings_rejected", "Sensor payloads rejected, by reason", labels=["reason"])
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        made = CounterMetricFamily("smartcity_waste_plans", "Collection plans made, by trigger", labels=["trigger"])
        for trigger, n in sorted(s.plans.items()):
            made.add_metric([trigger], n)
        yield made
        yield CounterMetricFamily("smartcity_waste_plan_seconds", "Seconds spent making plans (forecast and routing)", value=s.plan_seconds_sum)
        yield CounterMetricFamily("smartcity_waste_plan_failures", "Plans that failed", value=s.plan_failures)
        yield CounterMetricFamily("smartcity_waste_days_off", "Scheduled runs skipped: no collection that weekday", value=s.days_off)
        yield CounterMetricFamily("smartcity_waste_collections", "Collections reported by crews", value=s.collections)
        pushes = CounterMetricFamily("smartcity_waste_fleet_pushes", "Plans sent to the fleet system", labels=["target", "result"])
        for key, n in sorted(s.pushes.items()):
            pushes.add_metric(key.split(":", 1), n)
        yield pushes
        camera = CounterMetricFamily("smartcity_waste_camera_overflows", "Overflow rule events (a camera saw a full bin), by outcome", labels=["outcome"])
        for outcome, n in sorted(s.camera.items()):
            camera.add_metric([outcome], n)
        yield camera
        yield GaugeMetricFamily("smartcity_waste_bins", "Bins in the registry", value=len(self.bins))


class PlanFeed:
    """New plans to GraphQL subscribers; a subscriber that falls behind loses its oldest plans."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[store.StoredPlan]] = set()

    def publish(self, plan: store.StoredPlan) -> None:
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(plan)

    async def follow(self) -> AsyncIterator[store.StoredPlan]:
        q: asyncio.Queue[store.StoredPlan] = asyncio.Queue(FEED_QUEUE)
        self._queues.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._queues.discard(q)


def next_day(now: float, tz: tzinfo) -> datetime:
    """Local midnight starting the day after `now`."""
    d = datetime.fromtimestamp(now, tz).date() + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def next_run(now: float, at: time, tz: tzinfo) -> float:
    """The first local `at` strictly after `now`, as unix seconds."""
    d = datetime.fromtimestamp(now, tz).date()
    for k in range(3):  # a DST gap can skip a day's `at`: take the next one that exists
        day = d + timedelta(days=k)
        t = datetime(day.year, day.month, day.day, at.hour, at.minute, at.second, tzinfo=tz).timestamp()
        if t > now:
            return t
    raise AssertionError("unreachable: three days always hold a later time")


def forecasts(registry: Sequence[Bin], history: store.Series, tz: tzinfo) -> dict[str, FillForecast]:
    """A forecast per bin; a bin without usable history takes its stream's mean rate."""
    fitted = {}
    for b in registry:
        points = history.get(b.id, [])
        fitted[b.id] = fit([p[0] for p in points], [p[1] for p in points], tz)
    by_stream: dict[str, list[float]] = {}
    for b in registry:
        f = fitted[b.id]
        if f.hours_observed > 0:
            by_stream.setdefault(b.stream, []).append(float(f.rates.mean()))
    for b in registry:
        rates = by_stream.get(b.stream)
        if fitted[b.id].hours_observed == 0 and rates:
            fitted[b.id] = fit([], [], tz, prior_rate=sum(rates) / len(rates))
    return fitted


class WasteService:
    """One city's bins, readings and plans (built by the extension at start)."""

    def __init__(
        self, config: WasteConfig, registry: Sequence[Bin], db: ExtensionTables, clock: Clock, distances: DistanceSource | None = None
    ) -> None:
        self.config = config
        self.distances = distances or Haversine(config.roads.detour_factor, config.roads.speed_kmh)
        self.bins: dict[str, Bin] = {b.id: b for b in registry}
        self.configured = frozenset(self.bins)  # changed in the configuration only
        self.db = db
        self.clock = clock
        self.tz = config.schedule.tz
        self.stats = WasteStats()
        self.metrics = WasteMetrics(self.stats, self.bins)
        self.feed = PlanFeed()
        self.levels: dict[str, tuple[float, float]] = {}  # bin -> (level, unix t), newest known
        self._planning = asyncio.Lock()
        self._forecasts: dict[str, FillForecast] = {}
        self._forecast_at = float("-inf")

    async def load(self) -> None:
        """Write the registry and read the bins' last levels (after a restart: from the database)."""
        added = await store.sync_bins(self.db, [self.bins[i] for i in sorted(self.configured)], self.clock.time())
        self.bins.update((b.id, b) for b in added)
        self.levels = await store.latest_levels(self.db)

    async def save_bins(self, bins: Sequence[Bin], actor: str, via: Literal["save", "import"]) -> None:
        """Add or replace bins of the registry (not those of the configuration), audited."""
        seen: set[str] = set()
        for b in bins:
            if b.id in self.configured:
                raise BinRegistryError(f"bin {b.id!r} comes from the configuration: change it there")
            if b.id in seen:
                raise BinRegistryError(f"bin {b.id!r} is given twice")
            seen.add(b.id)
        if len(seen | set(self.bins)) > MAX_BINS:
            raise BinRegistryError(f"the registry would hold more than {MAX_BINS} bins")
        await store.save_api_bins(self.db, bins, actor, via, self.clock.time())
        self.bins.update((b.id, b) for b in bins)
        self._forecast_at = float("-inf")

    async def remove_bin(self, bin_id: str, actor: str) -> None:
        """Take a bin added through the API out of the registry (its readings stay), audited."""
        if bin_id not in self.bins:
            raise UnknownBin(bin_id)
        if bin_id in self.configured:
            raise BinRegistryError(f"bin {bin_id!r} comes from the configuration: remove it there")
        await store.delete_api_bin(self.db, bin_id, actor, self.bins[bin_id])
        del self.bins[bin_id]
        self.levels.pop(bin_id, None)
        self._forecast_at = float("-inf")

    def parse(self, payload: bytes, fmt: SensorFormat) -> FillReading:
        if fmt == "native":
            return parse_native(payload)
        if fmt == "tts_v3":
            return self.config.sensors.tts_v3.parse(payload)
        field_map = self.config.sensors.field_map
        if field_map is None:
            raise PayloadError("field_map", "format", "no sensors.field_map configured")
        return field_map.parse(payload)

    async def ingest(self, payload: bytes, fmt: SensorFormat) -> Ingested:
        """Parse, check and store one sensor payload (idempotent by its message id)."""
        try:
            reading = self.parse(payload, fmt)
            if reading.bin_id not in self.bins:
                raise UnknownBin(reading.bin_id)
        except PayloadError as exc:
            # the reason is a metric label: a field name we know, never text from the payload
            reason = "unknown_field" if exc.problem == "unknown field" else ("not_json" if exc.field == "payload" else "invalid_field")
            self.stats.rejected[reason] += 1
            return Ingested("rejected", None, reason, str(exc))
        except UnknownBin as exc:
            self.stats.rejected["unknown_bin"] += 1
            return Ingested("rejected", None, "unknown_bin", str(exc))
        if not await self._store(reading):
            self.stats.duplicates += 1
            return Ingested("duplicate", reading)
        self.stats.accepted += 1
        return Ingested("stored", reading)

    async def camera_reading(self, reading: FillReading) -> Ingested:
        """Store a full bin seen by a camera (an overflow event as a reading; see camera.py),
        counted apart from the sensors' readings."""
        if reading.bin_id not in self.bins:
            self.stats.camera["unknown_bin"] += 1
            return Ingested("rejected", None, "unknown_bin", str(UnknownBin(reading.bin_id)))
        outcome: Literal["stored", "duplicate"] = "stored" if await self._store(reading) else "duplicate"
        self.stats.camera[outcome] += 1
        return Ingested(outcome, reading)

    async def _store(self, reading: FillReading) -> bool:
        """Store a reading of a known bin and keep its bin's newest level; False for a redelivery."""
        # the database's unique key decides: an id remembered before a failed write would lose its retry
        if not await store.add_reading(self.db, reading, self.clock.time()):
            return False
        t = reading.t.timestamp()
        if reading.bin_id not in self.levels or t >= self.levels[reading.bin_id][1]:
            self.levels[reading.bin_id] = (reading.level, t)
        return True

    async def collected(self, bin_id: str, t: float | None, reported_by: str, via: str) -> float:
        """A crew emptied `bin_id` at `t` (default now): its level resets to 0. Returns the time."""
        if bin_id not in self.bins:
            raise UnknownBin(bin_id)
        at = self.clock.time() if t is None else t
        await store.add_collection(self.db, bin_id, at, reported_by, via)
        self.stats.collections += 1
        if bin_id not in self.levels or at >= self.levels[bin_id][1]:
            self.levels[bin_id] = (0.0, at)
        self._forecast_at = float("-inf")
        return at

    async def _history(self, now: float) -> store.Series:
        return await store.series(self.db, now - self.config.history_days * 86_400.0)

    async def forecast_of(self) -> dict[str, FillForecast]:
        """The bins' forecasts for queries (refitted when older than FORECAST_TTL_S)."""
        now = self.clock.monotonic()
        if now - self._forecast_at > FORECAST_TTL_S:
            history = await self._history(self.clock.time())
            self._forecasts = await asyncio.to_thread(forecasts, list(self.bins.values()), history, self.tz)
            self._forecast_at = now
        return self._forecasts

    def crossing(self, bin_id: str, fc: Mapping[str, FillForecast]) -> datetime | None:
        b, f, lv = self.bins[bin_id], fc.get(bin_id), self.levels.get(bin_id)
        if f is None or lv is None:
            return None
        return f.crossing(lv[0], datetime.fromtimestamp(lv[1], self.tz), b.threshold)

    def _plan(self, registry: list[Bin], history: store.Series, day: datetime, now: float) -> Plan:
        # runs in a worker thread: fitting and PyVRP are CPU-bound (the registry is a copy: the
        # API may change the live one meanwhile)
        fc = forecasts(registry, history, self.tz)
        states = []
        for b in registry:
            level, t = self.levels.get(b.id, (0.0, now))
            states.append(BinState(b, level, datetime.fromtimestamp(t, self.tz), fc[b.id]))
        return plan_day(states, self.config.depots, self.config.trucks, day, self.config.planner, self.distances)

    async def make_plan(self, trigger: Trigger, day: datetime | None = None) -> store.StoredPlan:
        """Forecast from stored readings, route the fleet off the event loop, store and announce the plan."""
        async with self._planning:  # one solver run at a time: each takes the CPU for its time limit
            now = self.clock.time()
            target = day or next_day(now, self.tz)
            t0 = _time.perf_counter()
            try:
                history = await self._history(now)
                plan = await asyncio.to_thread(self._plan, list(self.bins.values()), history, target, now)
            except (RoadNetworkError, ValueError) as exc:
                self.stats.plan_failures += 1
                raise PlanError(f"no plan: {exc}") from exc
            except Exception:
                self.stats.plan_failures += 1
                raise
            stored = await store.save_plan(self.db, trigger, target.date().isoformat(), plan_to_json(plan), now)
            self.stats.plans[trigger] += 1
            self.stats.plan_seconds_sum += _time.perf_counter() - t0
        self.feed.publish(stored)
        return stored

    async def has_plan(self, day: datetime, trigger: Trigger) -> bool:
        return bool(await store.plans(self.db, 1, day=day.date().isoformat(), trigger=trigger))
