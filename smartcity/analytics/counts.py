"""Line-crossing counts: 1-minute buckets by rule, class and direction, and their roll-ups."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable

from smartcity.core.events import CountBucket

BUCKET_S = 60
ROLLUP_SIZES = (900, 3600, 86400)
_NS = uuid.UUID("0f8a3d7e-2c61-4c53-8a0e-6a4b5f0e2d91")


def bucket_id(camera_id: str, rule_id: str, cls: str, direction: str, start: float, size: int) -> str:
    """Deterministic id of a bucket: the storage upserts by it."""
    return uuid.uuid5(_NS, f"{camera_id}/{rule_id}/{cls}/{direction}/{int(start)}/{size}").hex


class CountAggregator:
    """Totals per (rule, class, direction, minute); hands out the buckets that changed."""

    def __init__(self, camera_id: str, bucket_s: int = BUCKET_S) -> None:
        self.camera_id = camera_id
        self.bucket_s = bucket_s
        self.totals: dict[tuple[str, str, str, float], int] = {}
        self.dirty: set[tuple[str, str, str, float]] = set()

    def add(self, rule_id: str, cls: str, direction: str, t: float, n: int = 1) -> None:
        start = math.floor(t / self.bucket_s) * self.bucket_s
        key = (rule_id, cls, direction, float(start))
        self.totals[key] = self.totals.get(key, 0) + n
        self.dirty.add(key)

    def total(self, rule_id: str, cls: str | None = None, direction: str | None = None) -> int:
        return sum(
            n
            for (r, c, d, _), n in self.totals.items()
            if r == rule_id and (cls is None or c == cls) and (direction is None or d == direction)
        )

    def buckets(self, flush_before: float | None = None) -> list[CountBucket]:
        """Buckets changed since the last call, with their totals so far (the caller upserts).

        Buckets that end at or before `flush_before` are final: they are returned one last time
        if changed, then forgotten (a crossing reported later for them starts a new partial total).
        """
        out = [self._bucket(k) for k in sorted(self.dirty, key=lambda k: (k[3], k[0], k[1], k[2]))]
        self.dirty.clear()
        if flush_before is not None:
            for k in [k for k in self.totals if k[3] + self.bucket_s <= flush_before]:
                del self.totals[k]
        return out

    def snapshot(self) -> list[CountBucket]:
        """All buckets held, with their totals (does not clear the changed set)."""
        return [self._bucket(k) for k in sorted(self.totals, key=lambda k: (k[3], k[0], k[1], k[2]))]

    def _bucket(self, key: tuple[str, str, str, float]) -> CountBucket:
        rule_id, cls, direction, start = key
        return CountBucket(
            event_id=bucket_id(self.camera_id, rule_id, cls, direction, start, self.bucket_s),
            camera_id=self.camera_id,
            t=start,
            rule_id=rule_id,
            object_class=cls,
            direction=direction,
            bucket_start=start,
            bucket_s=self.bucket_s,
            n=self.totals[key],
        )


def rollup(buckets: Iterable[CountBucket], bucket_s: int, origin: float = 0.0) -> list[CountBucket]:
    """Sum buckets into larger ones of `bucket_s` seconds (900, 3600, 86400...) aligned on `origin`.

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
