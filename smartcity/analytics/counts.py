"""Line-crossing counts: 1-minute buckets by rule, class and direction, their parts and roll-ups.

Why a bucket has parts. A crossing is confirmed late (a track must mature first, and the crossing
time is interpolated back), and a producer forgets the buckets it has flushed, so a crossing may
arrive for a minute whose total was already handed out. Rather than keep every bucket forever,
or overwrite a bigger total with a new smaller one, the aggregator opens a new *part* of that
bucket: an independent running total with its own name. A bucket's count is the sum of its parts.

- A part is named after its first crossing: `"<serial>@<time>"`, the aggregator's serial number
  of the part plus the crossing time. The serial keeps two parts of one aggregator apart; the time
  keeps apart the parts of two aggregators (a camera restarted mid-minute starts a new aggregator
  whose serials start again at 0, but whose first crossing is another one). A replay of the same
  log names its parts the same way every time.
- Every emission of a part is a CountBucket with the part's running total `n`, which only grows.
  Its `event_id` names the emission (part and total), so a redelivered emission is the same
  event, and two emissions of one part in one batch are two events; storage keeps one row per
  part and, of two totals for it, the bigger (the later).
- Readers sum the parts: `merge_parts` (latest total of each part, summed per bucket) and
  `rollup` (which sums whatever it is given) here; storage's count series sums rows.

The alternative, storing every crossing and counting them at read time, costs a row per crossing
(tens of thousands a day per busy line) and is kept forever with the anonymous counts; parts cost
one row per bucket in the usual case, and one more per late arrival.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable

from smartcity.core.events import CountBucket

BUCKET_S = 60
ROLLUP_SIZES = (900, 3600, 86400)
_NS = uuid.UUID("0f8a3d7e-2c61-4c53-8a0e-6a4b5f0e2d91")

_Key = tuple[str, str, str, float]  # rule id, class, direction, bucket start


def bucket_id(camera_id: str, rule_id: str, cls: str, direction: str, start: float, size: int) -> str:
    """Deterministic id of a bucket (all its parts together), e.g. of a roll-up or a merged bucket."""
    return uuid.uuid5(_NS, f"{camera_id}/{rule_id}/{cls}/{direction}/{int(start)}/{size}").hex


def emission_id(bucket: str, part: str, n: int) -> str:
    """Deterministic id of one emission of a part: the same part and total, the same event."""
    return uuid.uuid5(_NS, f"{bucket}/{part}/{n}").hex


class CountAggregator:
    """Running totals of the open parts per (rule, class, direction, minute); hands out those that changed."""

    def __init__(self, camera_id: str, bucket_s: int = BUCKET_S) -> None:
        self.camera_id = camera_id
        self.bucket_s = bucket_s
        self.totals: dict[_Key, int] = {}
        self.parts: dict[_Key, str] = {}  # name of the open part of each bucket held
        self.dirty: set[_Key] = set()
        self._serial = 0

    def add(self, rule_id: str, cls: str, direction: str, t: float, n: int = 1) -> None:
        start = math.floor(t / self.bucket_s) * self.bucket_s
        key = (rule_id, cls, direction, float(start))
        if key not in self.totals:
            self.parts[key] = f"{self._serial}@{t:.6f}"
            self._serial += 1
        self.totals[key] = self.totals.get(key, 0) + n
        self.dirty.add(key)

    def total(self, rule_id: str, cls: str | None = None, direction: str | None = None) -> int:
        """Sum of the parts still held (flushed parts are no longer counted here)."""
        return sum(
            n
            for (r, c, d, _), n in self.totals.items()
            if r == rule_id and (cls is None or c == cls) and (direction is None or d == direction)
        )

    def buckets(self, flush_before: float | None = None) -> list[CountBucket]:
        """Parts changed since the last call, with their totals so far (the caller upserts by part).

        Parts of buckets that end at or before `flush_before` are final: they are returned one
        last time if changed, then forgotten; a crossing reported later for such a bucket opens a
        new part of it, so nothing is lost however late it comes.
        """
        out = [self._bucket(k) for k in sorted(self.dirty, key=_order)]
        self.dirty.clear()
        if flush_before is not None:
            for k in [k for k in self.totals if k[3] + self.bucket_s <= flush_before]:
                del self.totals[k]
                del self.parts[k]
        return out

    def snapshot(self) -> list[CountBucket]:
        """All parts held, with their totals (does not clear the changed set)."""
        return [self._bucket(k) for k in sorted(self.totals, key=_order)]

    def _bucket(self, key: _Key) -> CountBucket:
        rule_id, cls, direction, start = key
        part, n = self.parts[key], self.totals[key]
        return CountBucket(
            event_id=emission_id(bucket_id(self.camera_id, rule_id, cls, direction, start, self.bucket_s), part, n),
            camera_id=self.camera_id,
            t=start,
            rule_id=rule_id,
            object_class=cls,
            direction=direction,
            bucket_start=start,
            bucket_s=self.bucket_s,
            n=n,
            part=part,
        )


def _order(key: _Key) -> tuple[float, str, str, str]:
    return (key[3], key[0], key[1], key[2])


def merge_parts(emissions: Iterable[CountBucket]) -> list[CountBucket]:
    """One bucket per (camera, rule, class, direction, start, size): the sum over its parts of
    each part's latest (largest) total, however many emissions of each part are given."""
    latest: dict[tuple[str, str, str, str, float, int, str], CountBucket] = {}
    for b in emissions:
        k = b.part_key()
        prev = latest.get(k)
        if prev is None or prev.n < b.n:
            latest[k] = b
    sizes = sorted({b.bucket_s for b in latest.values()})
    return [m for size in sizes for m in rollup((b for b in latest.values() if b.bucket_s == size), size)]


def rollup(buckets: Iterable[CountBucket], bucket_s: int, origin: float = 0.0) -> list[CountBucket]:
    """Sum buckets (or the latest emission of each part) into larger ones of `bucket_s` seconds
    (900, 3600, 86400...) aligned on `origin`.

    `origin` shifts the alignment, e.g. to local midnight for daily buckets (`-utc_offset_s`).
    Each input bucket must fit inside one output bucket.
    """
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    sums: dict[tuple[str, str, str, str, float], int] = {}
    for b in buckets:
        if b.bucket_s > bucket_s or bucket_s % b.bucket_s:
            raise ValueError(f"cannot roll {b.bucket_s}-second buckets into {bucket_s}-second ones")
        start = origin + math.floor((b.bucket_start - origin) / bucket_s) * bucket_s
        key = (b.camera_id, b.rule_id, b.object_class, b.direction, float(start))
        sums[key] = sums.get(key, 0) + b.n
    return [
        CountBucket(
            event_id=bucket_id(cam, rule, cls, d, start, bucket_s),
            camera_id=cam,
            t=start,
            rule_id=rule,
            object_class=cls,
            direction=d,
            bucket_start=start,
            bucket_s=bucket_s,
            n=n,
        )
        for (cam, rule, cls, d, start), n in sorted(sums.items(), key=lambda kv: (kv[0][4], kv[0][:4]))
    ]
