"""The demo's rules: a counting line, a dwell zone and an occupancy zone on the bundled clip,
created when `smartcity demo` starts and the demo camera has none (an operator's rules are never
touched, and rules the demo created once and an operator deleted are not brought back).

The clip (OpenCV's vtest.avi, 768x576) looks down on a campus walkway that runs across the
picture from the left edge to a junction with a road on the right; people walk along it both
ways. Coordinates are normalised (0..1, origin top left) and use the walkers' feet (the box's
ground point), which is what the rules test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from smartcity.analytics import validate_rule
from smartcity.analytics.shapes import rule_shapes
from smartcity.core.config import DEMO_URL
from smartcity.storage.db import Database
from smartcity.storage.rules_repo import RuleRepo
from smartcity.storage.tables import audit_log

log = logging.getLogger(__name__)

ACTOR = "demo"

# `id` is prefixed with the camera id; `camera_id` is added.
DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "walkway-count",
        "type": "line_count",
        "name": "Walkway: walkers and cyclists each way",
        "classes": ["person", "bicycle"],
        # across the walkway, from the tape at its top edge to the lawn below it: 17 crossings
        # (6 to the junction, 11 to the west) in the clip's 80 s (YOLOv3-tiny with its corrected
        # anchor masks at 5 fps, replayed with the default tracker)
        "params": {
            "line": [[0.34, 0.27], [0.34, 0.56]],
            "in_direction": [1, 0],
            "in_name": "to-junction",
            "out_name": "to-west-lawn",
        },
    },
    {
        "id": "assembly-point-dwell",
        "type": "dwell",
        "name": "Lingering at the assembly point (10 s)",
        "classes": ["person"],
        # the paving around the lamp post and its "assembly point" sign. Nobody stops there in
        # the clip, but strollers take up to ~14 s to cross it: at 10 s the rule fires twice in
        # the clip's 80 s (YOLOv3-tiny at 5 fps, replayed), enough to show it.
        # Lingering, not parking: time in the zone counts even while walking (still_radius null).
        "params": {"zone": [[0.47, 0.36], [0.66, 0.36], [0.66, 0.6], [0.47, 0.6]], "threshold_s": 10,
                   "still_radius": None},
    },
    {
        "id": "walkway-occupancy",
        "type": "occupancy",
        "name": "People on the walkway",
        "classes": ["person"],
        # the walkway from the left edge to the junction; 6 people or more on it twice in the clip
        "params": {
            "zone": [[0.0, 0.3], [0.7, 0.3], [0.7, 0.62], [0.4, 0.6], [0.0, 0.47]],
            "thresholds": [6],
            "sample_interval_s": 60,
        },
    },
)


def demo_rule_specs(camera_id: str) -> list[dict[str, Any]]:
    """The demo rules for one camera, as rule specs (validated when saved)."""
    return [{**r, "id": f"{camera_id}-{r['id']}", "camera_id": camera_id} for r in DEMO_RULES]


async def bootstrap_demo_rules(db: Database, cameras: Iterable[tuple[str, str]]) -> list[str]:
    """Create the demo rules on every (camera id, url) showing the bundled clip that has no rule
    yet and never had them; returns the ids created. Idempotent: a second start creates nothing."""

    repo = RuleRepo(db)
    created: list[str] = []
    for camera_id, url in cameras:
        if url != DEMO_URL or await repo.list_rules(camera_ids=[camera_id]):
            continue
        specs = demo_rule_specs(camera_id)
        if await _created_before(db, [s["id"] for s in specs]):
            continue  # an operator deleted them: their choice stands
        for spec in specs:
            if await repo.get(spec["id"]) is not None:  # the id is taken (on another camera)
                continue
            clean = validate_rule(spec).model_dump(mode="json")
            await repo.save(clean, actor=ACTOR, shapes=rule_shapes(clean["params"]))
            created.append(spec["id"])
    if created:
        log.info("demo: created rules %s", ", ".join(created))
    return created


async def _created_before(db: Database, rule_ids: list[str]) -> bool:
    q = sa.select(sa.func.count()).select_from(audit_log).where(
        audit_log.c.target.in_([f"rule:{rid}" for rid in rule_ids]), audit_log.c.action == "rule.create"
    )
    async with db.engine.connect() as conn:
        return bool((await conn.execute(q)).scalar_one())
