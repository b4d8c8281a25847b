"""extensions.waste.bins: the bin model's bounds and the CSV/GeoJSON import with errors that name the row and field."""

from __future__ import annotations

import json
from datetime import time

import pytest
from pydantic import ValidationError

from smartcity.extensions.waste import Bin, BinImportError, load_bins_csv, load_bins_geojson

CSV = """id,lat,lon,capacity_l,stream,access_start,access_end,service_s,threshold
B1,52.52,13.40,1100,residual,06:00,12:00,90,0.75
B2,52.53,13.41,240,paper,,,,
"""


def test_csv_rows_become_bins_with_defaults_for_empty_cells() -> None:
    b1, b2 = load_bins_csv(CSV)
    assert (b1.id, b1.lat, b1.lon, b1.capacity_l, b1.stream) == ("B1", 52.52, 13.40, 1100, "residual")
    assert (b1.access.start, b1.access.end, b1.service_s, b1.threshold) == (time(6), time(12), 90, 0.75)
    assert b1.access.seconds() == (6 * 3600, 12 * 3600)
    assert (b2.stream, b2.service_s, b2.threshold, b2.access.seconds()) == ("paper", 60, 0.8, (0, 86399))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("id,lat,lon,capacity_l\nB1,95,13,100\n", ("row", 1, "lat")),
        ("id,lat,lon,capacity_l\nB1,52,13,100\nB2,52,13,-5\n", ("row", 2, "capacity_l")),
        ("id,lat,lon,capacity_l,access_start,access_end\nB1,52,13,100,12:00,06:00\n", ("row", 1, "access_start/access_end")),
        ("id,lat,lon,capacity_l\nB1,52,13,100\nB1,52,13,100\n", ("row", 2, "id")),
        ("id,lat,lon\nB1,52,13\n", ("row", 0, "capacity_l")),
        ("id,lat,lon,capacity_l,colour\nB1,52,13,100,red\n", ("row", 0, "colour")),
        ("id,lat,lon,capacity_l\nB 1,52,13,100\n", ("row", 1, "id")),
        ("id,lat,lon,capacity_l,stream\nB1,52,13,100,Residual Waste\n", ("row", 1, "stream")),
    ],
)
def test_csv_errors_name_row_and_field(text: str, where: tuple[str, int, str]) -> None:
    with pytest.raises(BinImportError) as exc:
        load_bins_csv(text)
    assert (exc.value.kind, exc.value.index, exc.value.field) == where


def _fc(*features: object) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _pt(x: float, y: float, **props: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": props}


def test_geojson_points_become_bins_positioned_by_geometry() -> None:
    (b,) = load_bins_geojson(_fc(_pt(13.4, 52.5, id="G1", capacity_l=660, stream="glass", access_start="07:30")))
    assert (b.id, b.lat, b.lon, b.capacity_l, b.stream, b.access.start) == ("G1", 52.5, 13.4, 660, "glass", time(7, 30))


@pytest.mark.parametrize(
    ("features", "where"),
    [
        ([_pt(13.4, 52.5, id="G1", capacity_l=660), _pt(13.4, 52.5, id="G2")], ("feature", 1, "capacity_l")),
        ([{"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}}], ("feature", 0, "geometry")),
        ([_pt(13.4, 52.5, id="G1", capacity_l=660, lat=1.0)], ("feature", 0, "properties.lat")),
        ([_pt(13.4, 52.5, id="G1", capacity_l=660, threshold=1.5)], ("feature", 0, "threshold")),
        ([_pt(13.4, 52.5, id="G1", capacity_l=660, owner="x")], ("feature", 0, "owner")),
    ],
)
def test_geojson_errors_name_feature_and_field(features: list[object], where: tuple[str, int, str]) -> None:
    with pytest.raises(BinImportError) as exc:
        load_bins_geojson(_fc(*features))
    assert (exc.value.kind, exc.value.index, exc.value.field) == where


def test_geojson_that_is_not_a_feature_collection_is_a_file_error() -> None:
    with pytest.raises(BinImportError) as exc:
        load_bins_geojson('{"type": "Feature"}')
    assert (exc.value.kind, exc.value.field) == ("file", "type")


def test_bin_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Bin.model_validate({"id": "B", "lat": 0, "lon": 0, "capacity_l": 1, "color": "red"})
