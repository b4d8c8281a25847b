"""A camera's `overflow` rule raises its bin to full in the running waste extension: the real rule's
event, published on the server's bus, shows as level 1.0 in `wasteBins`; a redelivery is stored
once; an unknown bin is counted, not raised, and the next event still comes through."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import sqlalchemy as sa
from waste_harness import city, gql, running, token

from smartcity.analytics import RuleEngine, validate_rule
from smartcity.analytics.rules.overflow import OverflowRule
from smartcity.core.events import RuleEvent
from smartcity.core.vision import FrameTracks, Track
from smartcity.extensions.waste.camera import OVERFLOW_RULE_TYPE
from smartcity.extensions.waste.tables import readings

BINS = "{ wasteBins { id level levelAt } }"
ZONE = [[0.4, 0.4], [0.7, 0.4], [0.7, 0.7], [0.4, 0.7]]


def overflow_event(bin_id: str, t0: float, rule_id: str = "bin-watch") -> RuleEvent:
    """What the overflow rule says of a bag lying by the bin for 5 s (run on tracks, as a camera would)."""
    spec = validate_rule({"id": rule_id, "camera_id": "cam-square", "type": "overflow",
                          "params": {"zone": ZONE, "bin_id": bin_id, "stay_s": 5}})
    engine = RuleEngine([spec], "cam-square")
    out: list[RuleEvent] = []
    for k in range(20):
        t = t0 + 0.5 * k
        bag = Track(track_id=7, cls="bin_bag", box=(530.0, 570.0, 570.0, 600.0), score=0.8, t=t, hits=10,
                    confirmed=True, time_since_update=0)
        out.extend(engine.update(FrameTracks("cam-square", t, 1000, 1000, (bag,))))
    assert len(out) == 1, out
    return out[0]


def metric(text: str, line_start: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_the_extension_and_the_rule_name_the_same_rule_type() -> None:
    assert OverflowRule.type_name == OVERFLOW_RULE_TYPE


async def test_an_overflow_event_raises_the_bin_to_full_once(tmp_path: Path) -> None:
    t0 = float(int(time.time()) - 120)  # whole seconds: the stored time compares exactly
    full = overflow_event("B01", t0)
    assert full.payload["bin_id"] == "B01"
    async with running(tmp_path / "db.sqlite", city(4)) as (server, client, _ext):
        viewer = await token(client, "watcher")
        admin = await token(client, "boss")
        await server.bus.publish(full)
        level: dict[str, object] = {}
        for _ in range(500):  # the extension's listener runs in its own task
            bins = {b["id"]: b for b in (await gql(client, BINS, viewer))["wasteBins"]}
            level = bins["B01"]
            if level["level"] is not None:
                break
            await asyncio.sleep(0.02)
        assert level["level"] == 1.0
        assert bins["B00"]["level"] is None

        other = RuleEvent(camera_id="cam-square", t=t0, rule_id="count", rule_type="line_count", kind="crossed",
                          payload={"bin_id": "B02"})
        await server.bus.publish_many([full, overflow_event("B99", t0, "stray-bin"), other,
                                       overflow_event("B03", t0 + 1, "bin-3")])
        for _ in range(500):
            text = (await client.get("/metrics", headers=admin)).text
            if metric(text, 'smartcity_waste_camera_overflows_total{outcome="stored"}') == 2:
                break
            await asyncio.sleep(0.02)
        for outcome, n in (("stored", 2), ("duplicate", 1), ("unknown_bin", 1), ("invalid", 0)):
            assert metric(text, f'smartcity_waste_camera_overflows_total{{outcome="{outcome}"}}') == n, outcome
        assert metric(text, "smartcity_waste_readings_accepted_total") == 0  # sensors' readings are counted apart
        bins = {b["id"]: b for b in (await gql(client, BINS, viewer))["wasteBins"]}
        assert (bins["B01"]["level"], bins["B02"]["level"], bins["B03"]["level"]) == (1.0, None, 1.0)

        assert server.db is not None
        async with server.db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(readings.c.message_id, readings.c.bin_id, readings.c.level,
                                                 readings.c.source, readings.c.t).order_by(readings.c.bin_id))).all()
        assert [tuple(r[:4]) for r in rows] == [(full.event_id, "B01", 1.0, "camera"),
                                               (rows[1][0], "B03", 1.0, "camera")]
        assert rows[0][4] == full.t
