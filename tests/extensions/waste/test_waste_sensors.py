"""extensions.waste.sensors: our payload, The Things Stack v3 uplinks, a vendor field map, bad payloads, dedupe."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smartcity.extensions.waste import (
    Deduplicator,
    FieldMap,
    LevelField,
    PayloadError,
    TtsV3Adapter,
    parse_native,
)

# shaped like the Application Server's uplink message (as:up:data:forward) in the TTS v3 data-format docs
TTS_UPLINK = {
    "end_device_ids": {
        "device_id": "fill-sensor-17",
        "application_ids": {"application_id": "city-bins"},
        "dev_eui": "70B3D57ED0000017",
        "dev_addr": "260B1234",
    },
    "correlation_ids": ["gs:uplink:01HXYZ", "as:up:01HXYZABCDEF0123456789ABCD"],
    "received_at": "2026-05-04T07:30:01.123456789Z",
    "uplink_message": {
        "session_key_id": "AXBSH1Pk6Z0G166",
        "f_port": 1,
        "f_cnt": 42,
        "frm_payload": "AD8=",
        "decoded_payload": {"fill_level": 63, "battery": 3.6},
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -97, "snr": 7.5}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}}},
        "received_at": "2026-05-04T07:30:01.100Z",
    },
}


def test_native_payload_is_a_reading() -> None:
    r = parse_native(b'{"bin_id": "B-42", "level": 0.63, "t": "2026-05-04T07:30:00Z", "message_id": "m1"}')
    assert (r.bin_id, r.level, r.t, r.message_id, r.source) == (
        "B-42",
        0.63,
        datetime(2026, 5, 4, 7, 30, tzinfo=UTC),
        "m1",
        "native",
    )
    pct = parse_native({"bin_id": "B-42", "level_percent": 105, "t": "2026-05-04T09:30:00+02:00", "message_id": "m2"})
    assert pct.level == 1.0  # a slight overshoot is clipped
    assert pct.t == datetime(2026, 5, 4, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", "payload"),
        (b"[1, 2]", "payload"),
        (b'{"level": 0.5, "t": "2026-05-04T07:30:00Z", "message_id": "m"}', "bin_id"),
        (b'{"bin_id": "B", "level": "half", "t": "2026-05-04T07:30:00Z", "message_id": "m"}', "level"),
        (b'{"bin_id": "B", "level": 3.0, "t": "2026-05-04T07:30:00Z", "message_id": "m"}', "level"),
        (b'{"bin_id": "B", "level": 0.5, "t": "2026-05-04T07:30:00", "message_id": "m"}', "t"),
        (b'{"bin_id": "B", "level": 0.5, "t": "yesterday", "message_id": "m"}', "t"),
        (b'{"bin_id": "B", "level": 0.5, "level_percent": 50, "t": "2026-05-04T07:30:00Z", "message_id": "m"}', "level"),
        (b'{"bin_id": "B", "level": 0.5, "t": "2026-05-04T07:30:00Z", "message_id": ""}', "message_id"),
        (b'{"bin_id": "B", "level": 0.5, "t": "2026-05-04T07:30:00Z", "message_id": "m", "x": 1}', "x"),
        (b'{"bin_id": "B", "level": NaN, "t": "2026-05-04T07:30:00Z", "message_id": "m"}', "level"),
        (b"{" + b" " * 70_000 + b"}", "payload"),
    ],
)
def test_malformed_native_payload_names_the_problem(payload: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as exc:
        parse_native(payload)
    assert (exc.value.source, exc.value.field) == ("native", field)


def test_tts_v3_uplink_is_a_reading_keyed_by_the_as_up_correlation_id() -> None:
    adapter = TtsV3Adapter(device_bins={"fill-sensor-17": "B-17"})
    r = adapter.parse(json.dumps(TTS_UPLINK))
    assert (r.bin_id, r.level, r.message_id, r.source) == ("B-17", 0.63, "as:up:01HXYZABCDEF0123456789ABCD", "tts_v3")
    assert r.t == datetime(2026, 5, 4, 7, 30, 1, 123456, tzinfo=UTC)


def test_tts_v3_without_correlation_ids_falls_back_to_device_session_and_frame_counter() -> None:
    doc = json.loads(json.dumps(TTS_UPLINK))
    del doc["correlation_ids"]
    r = TtsV3Adapter().parse(doc)
    assert (r.bin_id, r.message_id) == ("fill-sensor-17", "fill-sensor-17:AXBSH1Pk6Z0G166:42")


def test_tts_v3_distance_sensor_maps_to_a_level() -> None:
    doc = json.loads(json.dumps(TTS_UPLINK))
    doc["uplink_message"]["decoded_payload"] = {"distance_cm": 40}
    adapter = TtsV3Adapter(level=LevelField(path="distance_cm", kind="distance", empty_distance=120, full_distance=20))
    assert adapter.parse(doc).level == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["uplink_message"].pop("decoded_payload"), "uplink_message.decoded_payload"),
        (lambda d: d.pop("end_device_ids"), "end_device_ids.device_id"),
        (lambda d: d["uplink_message"]["decoded_payload"].pop("fill_level"), "fill_level"),
        (lambda d: d.update(received_at=17), "received_at"),
    ],
)
def test_malformed_tts_v3_uplink_names_the_problem(mutate: object, field: str) -> None:
    doc = json.loads(json.dumps(TTS_UPLINK))
    assert callable(mutate)
    mutate(doc)
    with pytest.raises(PayloadError) as exc:
        TtsV3Adapter().parse(doc)
    assert exc.value.source == "tts_v3"
    assert exc.value.field == field


def test_field_map_reads_another_vendors_shape() -> None:
    fmap = FieldMap(
        bin_id="meta.serial",
        level=LevelField(path="data.fill", kind="fraction"),
        t="data.ts",
        message_id="meta.msg",
        device_bins={"SN-9": "B-9"},
    )
    r = fmap.parse({"meta": {"serial": "SN-9", "msg": 77}, "data": {"fill": 0.25, "ts": "2026-05-04T07:00:00+00:00"}})
    assert (r.bin_id, r.level, r.message_id, r.source) == ("B-9", 0.25, "77", "field_map")
    with pytest.raises(PayloadError) as exc:
        fmap.parse({"meta": {"serial": "SN-9", "msg": 77}, "data": {"ts": "2026-05-04T07:00:00+00:00"}})
    assert exc.value.field == "data.fill"


def test_a_duplicated_message_is_seen_once_and_memory_is_bounded() -> None:
    dedupe = Deduplicator(capacity=3)
    r = TtsV3Adapter().parse(TTS_UPLINK)
    again = TtsV3Adapter().parse(json.dumps(TTS_UPLINK))  # the same uplink delivered twice
    assert [dedupe.first_time(r.message_id), dedupe.first_time(again.message_id)] == [True, False]
    for m in ("a", "b", "c"):
        assert dedupe.first_time(m)
    assert len(dedupe) == 3
    # the oldest id was forgotten to keep the bound
    assert dedupe.first_time(r.message_id) is True
