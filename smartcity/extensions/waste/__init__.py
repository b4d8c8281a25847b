"""Bin-fill waste collection: the bin registry, sensor readings, fill forecasts and the daily route plan.

The pure parts (bins, sensors, forecast, distances, planner, plans) do no I/O; the extension
(`type: waste`: config, tables, store, service, links, api, extension) runs them in the server.
"""

from .bins import Bin, BinImportError, TimeWindow, load_bins_csv, load_bins_geojson
from .config import WasteConfig
from .distances import DistanceSource, Haversine, MatrixFile, OsrmTable, Point, RoadNetworkError
from .extension import WasteExtension
from .forecast import FillForecast, ForecastConfig, fit, fit_readings
from .planner import (
    BinState,
    Depot,
    Plan,
    PlannerConfig,
    Route,
    Stop,
    Truck,
    Unvisited,
    plan_day,
    route,
    select,
)
from .sensors import Deduplicator, FieldMap, FillReading, LevelField, PayloadError, TtsV3Adapter, parse_native

__all__ = [
    "Bin",
    "BinImportError",
    "BinState",
    "Deduplicator",
    "Depot",
    "DistanceSource",
    "FieldMap",
    "FillForecast",
    "FillReading",
    "ForecastConfig",
    "Haversine",
    "LevelField",
    "MatrixFile",
    "OsrmTable",
    "PayloadError",
    "Plan",
    "PlannerConfig",
    "Point",
    "RoadNetworkError",
    "Route",
    "Stop",
    "TimeWindow",
    "Truck",
    "TtsV3Adapter",
    "Unvisited",
    "WasteConfig",
    "WasteExtension",
    "fit",
    "fit_readings",
    "load_bins_csv",
    "load_bins_geojson",
    "parse_native",
    "plan_day",
    "route",
    "select",
]
