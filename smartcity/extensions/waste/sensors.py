"""Fill-level readings from sensor payloads (our JSON, The Things Stack v3 uplinks, a vendor field map) and their dedupe.

Our documented payload (MQTT or HTTP body), one reading per message:

    {"bin_id": "B-0042", "level": 0.63, "t": "2026-05-04T07:30:00Z", "message_id": "a1b2c3"}

`level` is a fraction 0..1 (`level_percent` 0..100 may be sent instead); `t` is ISO 8601 with a
zone; `message_id` (1..128 chars) makes a retry idempotent.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PAYLOAD_BYTES = 64 * 1024  # a TTS uplink with many gateways' metadata is a few kB
MAX_ID_CHARS = 128

Source = Literal["native", "tts_v3", "field_map", "camera"]  # camera: an `overflow` rule's event (camera.py)


@dataclass(frozen=True, slots=True)
class FillReading:
    """One fill level of one bin at one time, with the id that makes its delivery idempotent."""

    bin_id: str
    level: float  # 0 (empty) .. 1 (full); clipped, since ultrasonic sensors overshoot a little
    t: datetime  # timezone-aware
    message_id: str
    source: Source


class PayloadError(ValueError):
    """A payload that is not a valid reading; `field` names where the problem is."""

    def __init__(self, source: Source, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source} payload: {field}: {problem}")


def _load(payload: bytes | str | Mapping[str, object], source: Source) -> Mapping[str, object]:
    if isinstance(payload, Mapping):
        return payload
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(source, "payload", f"over {MAX_PAYLOAD_BYTES} bytes")
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(source, "payload", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError(source, "payload", "expected a JSON object")
    return doc


def _path(doc: Mapping[str, object], path: str, source: Source) -> object:
    cur: object = doc
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise PayloadError(source, path, "missing")
        cur = cur[part]
    return cur


def _text(value: object, field: str, source: Source) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(source, field, "expected a string")
    s = str(value)
    if not 1 <= len(s) <= MAX_ID_CHARS:
        raise PayloadError(source, field, f"expected 1..{MAX_ID_CHARS} characters")
    return s


def _number(value: object, field: str, source: Source) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(source, field, "expected a number")
    x = float(value)
    if not math.isfinite(x):
        raise PayloadError(source, field, "not finite")
    return x


def _time(value: object, field: str, source: Source) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise PayloadError(source, field, "expected an ISO 8601 time")
    try:
        # TTS writes nanoseconds (…T15:15:01.123456789Z); Python keeps microseconds
        text = value.replace("Z", "+00:00")
        if "." in text:
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = head + "." + tail[: min(digits, 6)] + tail[digits:]
        t = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(source, field, "expected an ISO 8601 time") from None
    if t.tzinfo is None:
        raise PayloadError(source, field, "time has no zone")
    return t


def _level(value: float, scale: float, field: str, source: Source) -> float:
    level = value / scale
    # sensors read a little past empty/full (foam, a lid): tolerate 10 %, clip, reject nonsense
    if not -0.1 <= level <= 1.1:
        raise PayloadError(source, field, f"level {value} outside 0..{scale:g}")
    return min(1.0, max(0.0, level))


def parse_native(payload: bytes | str | Mapping[str, object]) -> FillReading:
    """A reading from our documented JSON payload (see the module docstring)."""
    doc = _load(payload, "native")
    known = {"bin_id", "level", "level_percent", "t", "message_id"}
    for key in doc:
        if key not in known:
            raise PayloadError("native", key, "unknown field")
    if ("level" in doc) == ("level_percent" in doc):
        raise PayloadError("native", "level", "give exactly one of level, level_percent")
    if "level" in doc:
        level = _level(_number(doc["level"], "level", "native"), 1.0, "level", "native")
    else:
        level = _level(_number(doc["level_percent"], "level_percent", "native"), 100.0, "level_percent", "native")
    return FillReading(
        bin_id=_text(_path(doc, "bin_id", "native"), "bin_id", "native"),
        level=level,
        t=_time(_path(doc, "t", "native"), "t", "native"),
        message_id=_text(_path(doc, "message_id", "native"), "message_id", "native"),
        source="native",
    )


class LevelField(BaseModel):
    """Where a vendor's payload carries the fill level and how to turn it into 0..1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=200, description="dotted path, e.g. 'fill.percent'")
    kind: Literal["fraction", "percent", "distance"] = Field(
        "percent", description="fraction 0..1, percent 0..100, or the ultrasonic distance to the waste"
    )
    # for kind=distance: the reading when empty (distance to the bottom) and when full
    empty_distance: float | None = Field(None, gt=0, le=10_000, description="distance reading of an empty bin")
    full_distance: float | None = Field(None, ge=0, le=10_000, description="distance reading of a full bin")

    def to_level(self, value: float, source: Source) -> float:
        if self.kind == "fraction":
            return _level(value, 1.0, self.path, source)
        if self.kind == "percent":
            return _level(value, 100.0, self.path, source)
        if self.empty_distance is None or self.full_distance is None or self.empty_distance <= self.full_distance:
            raise PayloadError(source, self.path, "distance needs empty_distance > full_distance")
        span = self.empty_distance - self.full_distance
        return _level(self.empty_distance - value, span, self.path, source)


class TtsV3Adapter(BaseModel):
    """The Things Stack v3 uplink (application `up` message) with a payload formatter's `decoded_payload`.

    The bin is the device id, or the bin that `device_bins` maps it to. The message id is the
    Application Server's `as:up:` correlation id, else device id + session key + frame counter,
    so the same uplink delivered by a retrying webhook or MQTT is recognised.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: LevelField = Field(
        default_factory=lambda: LevelField(path="fill_level", kind="percent"),
        description="the fill level inside decoded_payload",
    )
    device_bins: dict[str, str] = Field(
        default_factory=dict, max_length=100_000, description="device id -> bin id (default: the same id)"
    )

    def parse(self, payload: bytes | str | Mapping[str, object]) -> FillReading:
        src: Source = "tts_v3"
        doc = _load(payload, src)
        device = _text(_path(doc, "end_device_ids.device_id", src), "end_device_ids.device_id", src)
        up = _path(doc, "uplink_message", src)
        if not isinstance(up, Mapping):
            raise PayloadError(src, "uplink_message", "expected an object")
        decoded = up.get("decoded_payload")
        if not isinstance(decoded, Mapping):
            raise PayloadError(src, "uplink_message.decoded_payload", "missing: set a payload formatter")
        value = _number(_path(decoded, self.level.path, src), f"decoded_payload.{self.level.path}", src)
        at = doc.get("received_at", up.get("received_at"))
        return FillReading(
            bin_id=self.device_bins.get(device, device),
            level=self.level.to_level(value, src),
            t=_time(at, "received_at", src),
            message_id=_tts_message_id(doc, up, device),
            source=src,
        )


def _tts_message_id(doc: Mapping[str, object], up: Mapping[str, object], device: str) -> str:
    corr = doc.get("correlation_ids")
    if isinstance(corr, list):
        for c in corr:
            if isinstance(c, str) and c.startswith("as:up:") and len(c) <= MAX_ID_CHARS:
                return c
    # TTS omits zero values: a missing f_cnt is frame 0
    f_cnt = up.get("f_cnt", 0)
    session = up.get("session_key_id", "")
    if isinstance(f_cnt, bool) or not isinstance(f_cnt, int) or not isinstance(session, str):
        raise PayloadError("tts_v3", "uplink_message.f_cnt", "no correlation id and no frame counter")
    return f"{device}:{session}:{f_cnt}"[:MAX_ID_CHARS]


class FieldMap(BaseModel):
    """Another vendor's JSON: dotted paths to the bin id, the level, the time and the message id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bin_id: str = Field(min_length=1, max_length=200, description="path to the bin (or device) id")
    level: LevelField
    t: str = Field(min_length=1, max_length=200, description="path to an ISO 8601 time with a zone")
    message_id: str = Field(min_length=1, max_length=200, description="path to a per-message id")
    device_bins: dict[str, str] = Field(default_factory=dict, max_length=100_000, description="id -> bin id")

    def parse(self, payload: bytes | str | Mapping[str, object]) -> FillReading:
        src: Source = "field_map"
        doc = _load(payload, src)
        ident = _text(_path(doc, self.bin_id, src), self.bin_id, src)
        value = _number(_path(doc, self.level.path, src), self.level.path, src)
        return FillReading(
            bin_id=self.device_bins.get(ident, ident),
            level=self.level.to_level(value, src),
            t=_time(_path(doc, self.t, src), self.t, src),
            message_id=_text(_path(doc, self.message_id, src), self.message_id, src),
            source=src,
        )


class Deduplicator:
    """Remembers the last `capacity` message ids; `first_time(id)` is True once per id while remembered.

    Bounded so a flood of unique ids costs fixed memory; the durable store keeps its own unique
    key for ids older than this window.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, message_id: str) -> bool:
        if message_id in self._seen:
            self._seen.move_to_end(message_id)
            return False
        self._seen[message_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)
