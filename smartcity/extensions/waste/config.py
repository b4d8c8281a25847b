"""The `waste` extension's config entry: bins, depots, trucks, planner, daily schedule, sensor adapters, MQTT and fleet push."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smartcity.extensions.base import ExtensionConfig

from .bins import MAX_BINS, Bin, load_bins_csv, load_bins_geojson
from .planner import Depot, PlannerConfig, Truck
from .sensors import FieldMap, TtsV3Adapter

SensorFormat = Literal["native", "tts_v3", "field_map"]
TOPIC = r"^[^#+\x00]{1,200}$"  # a concrete topic (subscriptions may use wildcards: see MqttConfig)
SUB_TOPIC = r"^[^\x00]{1,200}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Strict):
    """When the daily plan is made, in the city's time zone (for the next day)."""

    enabled: bool = Field(True, description="Plan every day at `at` (False: on demand only).")
    at: time = Field(time(18, 0), description="Local time of day the next day's plan is made.")
    timezone: str = Field("UTC", description="IANA zone of the city (bin and shift windows are local).", max_length=64)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Sensors(_Strict):
    """How sensor payloads that are not our native JSON become readings."""

    tts_v3: TtsV3Adapter = Field(default_factory=TtsV3Adapter, description="The Things Stack v3 uplinks.")
    field_map: FieldMap | None = Field(None, description="Another vendor's JSON (dotted paths to the fields).")


class MqttTopic(_Strict):
    topic: str = Field(pattern=SUB_TOPIC, description="Topic filter (`+` and `#` allowed).")
    format: SensorFormat = Field("native", description="Payload format on this topic.")


class MqttConfig(_Strict):
    """The broker the sensors (or the LoRaWAN network server) publish to; also used for fleet push."""

    host: str = Field("127.0.0.1", min_length=1, max_length=255)
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = Field(None, max_length=200)
    password: SecretStr | None = None
    client_id: str = Field("smartcity-waste", min_length=1, max_length=64)
    topics: list[MqttTopic] = Field(
        default_factory=lambda: [MqttTopic(topic="smartcity/waste/readings", format="native")], max_length=32
    )
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Longest delay between reconnection attempts.")


class FleetPush(_Strict):
    """Where each new plan is sent: a webhook (POST of the plan's JSON) and/or an MQTT topic."""

    webhook_url: str | None = Field(None, pattern=r"^https?://", max_length=2000)
    webhook_headers: dict[str, str] = Field(default_factory=dict, max_length=16, description="e.g. an authorization header")
    mqtt_topic: str | None = Field(None, pattern=TOPIC, description="Publish the plan here (QoS 1, retained).")
    timeout_s: float = Field(10.0, gt=0, le=120)
    attempts: int = Field(3, ge=1, le=10)

    @model_validator(mode="after")
    def _some_target(self) -> FleetPush:
        if self.webhook_url is None and self.mqtt_topic is None:
            raise ValueError("give webhook_url, mqtt_topic or both")
        return self


class Roads(_Strict):
    """Where travel distances and times come from: straight lines times a detour factor (the
    default), a precomputed matrix file, or an OSRM-compatible /table server."""

    detour_factor: float = Field(1.3, ge=1.0, le=3.0, description="Street length over straight-line length.")
    speed_kmh: float = Field(25.0, gt=0, le=130, description="Mean speed for straight-line travel times.")
    matrix_file: Path | None = Field(None, description='JSON {"ids": [...], "distance_m": [[...]], "duration_s": [[...]]} over depot and bin ids.')
    osrm_url: str | None = Field(None, pattern=r"^https?://", max_length=2000, description="Base URL of an OSRM-compatible server.")
    osrm_profile: str = Field("driving", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Per OSRM request.")

    @model_validator(mode="after")
    def _one_source(self) -> Roads:
        if self.matrix_file is not None and self.osrm_url is not None:
            raise ValueError("give matrix_file or osrm_url, not both")
        return self


class WasteConfig(ExtensionConfig):
    """Bin-fill waste collection: sensor ingestion, fill forecasts and the daily route plan."""

    type: Literal["waste"] = "waste"
    bins: list[Bin] = Field(default_factory=list, max_length=MAX_BINS, description="Bins listed inline.")
    bins_file: Path | None = Field(None, description="CSV or GeoJSON bin registry (by suffix), added to `bins`.")
    depots: list[Depot] = Field(min_length=1, max_length=100)
    trucks: list[Truck] = Field(min_length=1, max_length=100)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    roads: Roads = Field(default_factory=Roads)
    schedule: Schedule = Field(default_factory=Schedule)
    sensors: Sensors = Field(default_factory=Sensors)
    mqtt: MqttConfig | None = Field(None, description="Ingest readings from a broker (and push plans there).")
    fleet: FleetPush | None = Field(None, description="Send each new plan to the fleet system.")
    history_days: int = Field(28, ge=1, le=366, description="Days of readings the forecast learns from.")

    @model_validator(mode="after")
    def _consistent(self) -> WasteConfig:
        depots = {d.id for d in self.depots}
        if len(depots) != len(self.depots):
            raise ValueError("depots: ids must be unique")
        for t in self.trucks:
            if t.depot not in depots:
                raise ValueError(f"trucks: {t.id}: unknown depot {t.depot!r}")
        if len({b.id for b in self.bins}) != len(self.bins):
            raise ValueError("bins: ids must be unique")
        if self.bins_file is not None and self.bins_file.suffix.lower() not in (".csv", ".geojson", ".json"):
            raise ValueError("bins_file: expected a .csv, .geojson or .json file")
        if self.fleet is not None and self.fleet.mqtt_topic is not None and self.mqtt is None:
            raise ValueError("fleet.mqtt_topic needs the mqtt broker section")
        return self

    def load_bins(self) -> list[Bin]:
        """The inline bins plus those of `bins_file` (read now; raises BinImportError or OSError)."""
        out = list(self.bins)
        if self.bins_file is not None:
            text = self.bins_file.read_text(encoding="utf-8")
            out += load_bins_csv(text) if self.bins_file.suffix.lower() == ".csv" else load_bins_geojson(text)
        seen: set[str] = set()
        for b in out:
            if b.id in seen:
                raise ValueError(f"bin {b.id!r} is both inline and in {self.bins_file}")
            seen.add(b.id)
        return out
