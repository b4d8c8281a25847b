"""Travel distances and times between depots and bins: haversine with a detour factor, a matrix file, or an OSRM /table server."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import numpy as np
import numpy.typing as npt

IntMatrix = npt.NDArray[np.int64]
EARTH_RADIUS_M = 6_371_008.8
UNREACHABLE_M = 10_000_000  # 10,000 km: a leg no plan takes, kept finite for the solver


@dataclass(frozen=True, slots=True)
class Point:
    """A place a truck goes to: a depot or a bin, by its id."""

    id: str
    lat: float
    lon: float


class DistanceSource(Protocol):
    """Square matrices over `points`, in their order: metres and seconds, integers."""

    def matrix(self, points: Sequence[Point]) -> tuple[IntMatrix, IntMatrix]: ...


class RoadNetworkError(RuntimeError):
    """The road network could not give a matrix (server down, bad answer, point not in the file)."""


def haversine_m(lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike) -> npt.NDArray[np.float64]:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    out: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


@dataclass(frozen=True, slots=True)
class Haversine:
    """Great-circle distance times a detour factor (streets are not straight), at a mean speed."""

    detour_factor: float = 1.3
    speed_kmh: float = 25.0

    def matrix(self, points: Sequence[Point]) -> tuple[IntMatrix, IntMatrix]:
        lat = np.array([p.lat for p in points], dtype=np.float64)
        lon = np.array([p.lon for p in points], dtype=np.float64)
        d = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * self.detour_factor
        dist = np.rint(d).astype(np.int64)
        dur = np.rint(d / (self.speed_kmh / 3.6)).astype(np.int64)
        return dist, dur


@dataclass(frozen=True, slots=True)
class MatrixFile:
    """A precomputed matrix keyed by point id (from a road network tool), parsed from JSON text:

    {"ids": ["depot", "B1", ...], "distance_m": [[...], ...], "duration_s": [[...], ...]}
    """

    ids: tuple[str, ...]
    distance_m: IntMatrix
    duration_s: IntMatrix

    @classmethod
    def from_json(cls, text: str, max_points: int = 20_000) -> MatrixFile:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"matrix file: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("matrix file: expected an object")
        ids = doc.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > max_points:
            raise ValueError(f"matrix file: ids: expected up to {max_points} strings")
        if len(set(ids)) != len(ids):
            raise ValueError("matrix file: ids: duplicates")
        n = len(ids)
        mats = []
        for key in ("distance_m", "duration_s"):
            try:
                m = np.asarray(doc.get(key), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"matrix file: {key}: expected numbers") from None
            if m.shape != (n, n) or not np.all(np.isfinite(m)) or np.any(m < 0):
                raise ValueError(f"matrix file: {key}: expected a {n}x{n} matrix of non-negative numbers")
            mats.append(np.rint(m).astype(np.int64))
        return cls(tuple(ids), mats[0], mats[1])

    def matrix(self, points: Sequence[Point]) -> tuple[IntMatrix, IntMatrix]:
        pos = {pid: i for i, pid in enumerate(self.ids)}
        missing = [p.id for p in points if p.id not in pos]
        if missing:
            raise RoadNetworkError(f"matrix file has no row for {missing[:5]} ({len(missing)} missing)")
        idx = np.array([pos[p.id] for p in points], dtype=np.int64)
        return self.distance_m[np.ix_(idx, idx)], self.duration_s[np.ix_(idx, idx)]


class OsrmTable:
    """An OSRM-compatible `/table/v1/{profile}` client, asked block by block (servers cap the table size).

    `client` is an httpx.Client the caller owns (tests pass one with a MockTransport or a loopback
    base URL); the request is synchronous because planning runs in a worker thread.
    """

    def __init__(self, client: httpx.Client, base_url: str, profile: str = "driving", block: int = 100) -> None:
        if block < 1:
            raise ValueError("block must be positive")
        self._client = client
        self._base = base_url.rstrip("/")
        self._profile = profile
        self._block = block

    def matrix(self, points: Sequence[Point]) -> tuple[IntMatrix, IntMatrix]:
        n = len(points)
        dist = np.zeros((n, n), dtype=np.int64)
        dur = np.zeros((n, n), dtype=np.int64)
        blocks = [list(range(i, min(i + self._block, n))) for i in range(0, n, self._block)]
        for src in blocks:
            for dst in blocks:
                d, s = self._table([points[i] for i in src], [points[j] for j in dst])
                dist[np.ix_(src, dst)] = d
                dur[np.ix_(src, dst)] = s
        np.fill_diagonal(dist, 0)
        np.fill_diagonal(dur, 0)
        return dist, dur

    def _table(self, src: list[Point], dst: list[Point]) -> tuple[IntMatrix, IntMatrix]:
        # a diagonal block repeats its points: simpler than index mapping, and OSRM accepts it
        pts = src + dst
        coords = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in pts)
        params = {
            "sources": ";".join(str(i) for i in range(len(src))),
            "destinations": ";".join(str(len(src) + j) for j in range(len(dst))),
            "annotations": "distance,duration",
        }
        url = f"{self._base}/table/v1/{self._profile}/{coords}"
        try:
            resp = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise RoadNetworkError(f"OSRM table request failed: {exc}") from exc
        if resp.status_code != 200:
            raise RoadNetworkError(f"OSRM table answered HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            raise RoadNetworkError("OSRM table answer is not JSON") from None
        if not isinstance(doc, dict) or doc.get("code") != "Ok":
            code = doc.get("code") if isinstance(doc, dict) else None
            raise RoadNetworkError(f"OSRM table answered code {code!r}")
        return _grid(doc.get("distances"), len(src), len(dst), "distances"), _grid(
            doc.get("durations"), len(src), len(dst), "durations"
        )


def _grid(raw: object, rows: int, cols: int, name: str) -> IntMatrix:
    if not isinstance(raw, list) or len(raw) != rows:
        raise RoadNetworkError(f"OSRM table: {name}: expected {rows} rows")
    out = np.empty((rows, cols), dtype=np.int64)
    for i, row in enumerate(raw):
        if not isinstance(row, list) or len(row) != cols:
            raise RoadNetworkError(f"OSRM table: {name}: row {i}: expected {cols} values")
        for j, v in enumerate(row):
            # null = no route between the two points: a leg the solver must not take
            if v is None:
                out[i, j] = UNREACHABLE_M
            elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
                out[i, j] = round(v)
            else:
                raise RoadNetworkError(f"OSRM table: {name}: row {i}: bad value {v!r}")
    return out
