"""A city's camera inventory as a file: CSV or GeoJSON parsed into validated `CameraConfig`s,
every problem listed with its row or feature (pure: no I/O, bounded input).

CSV: a header row with `id` and `url`, and any of `name`, `group`, `enabled`, `analysis_fps`,
`site` (other columns are refused: a typo would silently drop a setting).
GeoJSON: a FeatureCollection of Point features whose `properties` carry the same fields; the
point's coordinates are not stored (the camera's position is not part of its configuration).
"""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from smartcity.core.config import CameraConfig, format_validation_error
from smartcity.core.errors import ValidationFailed

MAX_CAMERAS = 10_000
MAX_BYTES = 5_000_000
FIELDS = ("id", "url", "name", "group", "enabled", "analysis_fps", "site")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class CameraImportError(ValidationFailed):
    """A camera file refused; `errors` holds one `where: field: message` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ImportFormat(StrEnum):
    CSV = "csv"
    GEOJSON = "geojson"


def parse_cameras(text: str, fmt: ImportFormat) -> list[CameraConfig]:
    """Every camera of the file, or CameraImportError listing each problem (`row 3: url: ...`)."""
    if len(text.encode()) > MAX_BYTES:
        raise CameraImportError([f"the file is over {MAX_BYTES // 1_000_000} MB"])
    records = _csv_records(text) if fmt is ImportFormat.CSV else _geojson_records(text)
    if len(records) > MAX_CAMERAS:
        raise CameraImportError([f"{len(records)} cameras: at most {MAX_CAMERAS} per import"])
    errors: list[str] = []
    cameras: list[CameraConfig] = []
    seen: dict[str, str] = {}
    for where, data in records:
        try:
            cam = CameraConfig.model_validate(data)
        except ValidationError as exc:
            errors += [f"{where}: {line}" for line in format_validation_error(exc)]
            continue
        if cam.id in seen:
            errors.append(f"{where}: id: {cam.id!r} repeats {seen[cam.id]}")
            continue
        seen[cam.id] = where
        cameras.append(cam)
    if errors:
        raise CameraImportError(errors[:100])
    if not cameras:
        raise CameraImportError(["the file names no camera"])
    return cameras


def _csv_records(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in FIELDS]
    missing = [h for h in ("id", "url") if h not in header]
    if unknown or missing:
        problems = [f"unknown column {h!r} (known: {', '.join(FIELDS)})" for h in unknown]
        raise CameraImportError(problems + [f"column {h!r} is required" for h in missing])
    out: list[tuple[str, dict[str, Any]]] = []
    for n, row in enumerate(reader, start=2):
        if n - 1 > MAX_CAMERAS:
            raise CameraImportError([f"more than {MAX_CAMERAS} cameras: at most {MAX_CAMERAS} per import"])
        if None in row:
            raise CameraImportError([f"row {n}: more values than columns"])
        data = {k.strip(): (v or "").strip() for k, v in row.items() if (v or "").strip() != ""}
        if data:
            out.append((f"row {n}", _typed(data)))
    return out


def _typed(data: dict[str, Any]) -> dict[str, Any]:
    enabled = data.get("enabled")
    if isinstance(enabled, str):
        low = enabled.lower()
        data["enabled"] = True if low in _TRUE else False if low in _FALSE else enabled
    return data


def _geojson_records(text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CameraImportError([f"not JSON: {exc.msg} at line {exc.lineno}"]) from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise CameraImportError(["a GeoJSON FeatureCollection is expected"])
    out: list[tuple[str, dict[str, Any]]] = []
    for i, feature in enumerate(doc["features"]):
        where = f"feature {i}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            raise CameraImportError([f"{where}: a Feature with properties is expected"])
        unknown = [k for k in props if k not in FIELDS]
        if unknown:
            raise CameraImportError([f"{where}: unknown properties {unknown} (known: {', '.join(FIELDS)})"])
        out.append((where, _typed(dict(props))))
    return out
