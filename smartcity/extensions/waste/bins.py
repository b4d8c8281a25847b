"""The bin registry model (where each bin is, what it holds, when it may be emptied) and its CSV/GeoJSON import."""

from __future__ import annotations

import csv
import io
import json
from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_BINS = 100_000
MAX_IMPORT_CHARS = 20_000_000  # ~200 bytes a row: a registry of MAX_BINS bins fits with room to spare

BinId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
# a city names its own streams (residual, paper, glass, organic, ...): a short lowercase token
WasteStream = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_\-]*$")]


class TimeWindow(BaseModel):
    """A daily window in the city's local time; `end` after `start` (no windows across midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = Field(time(0, 0), description="earliest local time of day")
    end: time = Field(time(23, 59, 59), description="latest local time of day")

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def seconds(self) -> tuple[int, int]:
        """The window as seconds since local midnight."""
        return _sec(self.start), _sec(self.end)


def _sec(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class Bin(BaseModel):
    """One collection point: a container of one waste stream that a truck of that stream empties."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: BinId = Field(description="the city's id for the bin (also the sensor's bin id)")
    lat: float = Field(ge=-90.0, le=90.0, description="WGS84 latitude, degrees")
    lon: float = Field(ge=-180.0, le=180.0, description="WGS84 longitude, degrees")
    capacity_l: int = Field(gt=0, le=50_000, description="container volume in litres")
    stream: WasteStream = Field("residual", description="waste stream; trucks carry capacity per stream")
    access: TimeWindow = Field(default_factory=TimeWindow, description="when a truck may empty it")
    service_s: int = Field(60, ge=0, le=3600, description="time to empty it, seconds")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="fill level (0..1) at which it counts as full")


class BinImportError(ValueError):
    """A row (CSV, 1-based after the header) or feature (GeoJSON, 0-based) that is not a valid bin."""

    def __init__(self, kind: Literal["row", "feature", "file", "bin"], index: int, field: str, problem: str) -> None:
        self.kind = kind
        self.index = index
        self.field = field
        self.problem = problem
        super().__init__(f"{kind} {index}: {field}: {problem}")


CSV_COLUMNS = ("id", "lat", "lon", "capacity_l", "stream", "access_start", "access_end", "service_s", "threshold")
_REQUIRED = ("id", "lat", "lon", "capacity_l")


def build_bin(fields: dict[str, object], kind: Literal["row", "feature", "bin"], index: int) -> Bin:
    """A Bin from flat fields (`access_start`/`access_end` as in a CSV), or a BinImportError naming the place and field."""
    window: dict[str, object] = {}
    for src, dst in (("access_start", "start"), ("access_end", "end")):
        if src in fields:
            window[dst] = fields.pop(src)
    if window:
        fields["access"] = window
    try:
        return Bin.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["access"]:
            # name the column the user wrote, not our nested model's field
            loc = ["access_" + loc[1]] if len(loc) > 1 else ["access_start/access_end"]
        raise BinImportError(kind, index, ".".join(loc) or "bin", err["msg"]) from None


def _check_unique(bins: list[Bin], kind: Literal["row", "feature"], first: int) -> None:
    seen: set[str] = set()
    for i, b in enumerate(bins):
        if b.id in seen:
            raise BinImportError(kind, i + first, "id", f"duplicate bin id {b.id!r}")
        seen.add(b.id)


def _check_size(text: str) -> None:
    if len(text) > MAX_IMPORT_CHARS:
        raise BinImportError("file", 0, "size", f"over {MAX_IMPORT_CHARS} characters")


def load_bins_csv(text: str) -> list[Bin]:
    """Bins from CSV text with a header naming CSV_COLUMNS (id, lat, lon, capacity_l required; rest optional)."""
    _check_size(text)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    for name in _REQUIRED:
        if name not in header:
            raise BinImportError("row", 0, name, "missing column")
    for name in header:
        if name not in CSV_COLUMNS:
            raise BinImportError("row", 0, name, "unknown column")
    bins: list[Bin] = []
    for n, row in enumerate(reader, start=1):
        if n > MAX_BINS:
            raise BinImportError("row", n, "id", f"more than {MAX_BINS} bins")
        if None in row:
            raise BinImportError("row", n, "row", "more values than columns")
        # an empty optional cell takes the default
        fields: dict[str, object] = {k: v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
        bins.append(build_bin(fields, "row", n))
    _check_unique(bins, "row", 1)
    return bins


def load_bins_geojson(text: str) -> list[Bin]:
    """Bins from a GeoJSON FeatureCollection of Points; the bin's fields are the feature's properties."""
    _check_size(text)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BinImportError("file", 0, "json", str(exc)) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BinImportError("file", 0, "type", "expected a FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise BinImportError("file", 0, "features", "expected a list")
    if len(features) > MAX_BINS:
        raise BinImportError("file", 0, "features", f"more than {MAX_BINS} bins")
    bins: list[Bin] = []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise BinImportError("feature", i, "feature", "expected an object")
        geom = feat.get("geometry")
        if not isinstance(geom, dict) or geom.get("type") != "Point":
            raise BinImportError("feature", i, "geometry", "expected a Point")
        coords = geom.get("coordinates")
        if (
            not isinstance(coords, list)
            or len(coords) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2])
        ):
            raise BinImportError("feature", i, "geometry.coordinates", "expected [lon, lat]")
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            raise BinImportError("feature", i, "properties", "expected an object")
        fields: dict[str, object] = dict(props)
        if "id" not in fields and isinstance(feat.get("id"), str | int):
            fields["id"] = str(feat["id"])
        for k in ("lat", "lon"):
            if k in fields:
                raise BinImportError("feature", i, f"properties.{k}", "position comes from the geometry")
        fields["lon"], fields["lat"] = coords[0], coords[1]
        bins.append(build_bin(fields, "feature", i))
    _check_unique(bins, "feature", 0)
    return bins
