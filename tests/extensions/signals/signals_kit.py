"""A four-arm junction for the signals tests: two vehicle phases and a pedestrian phase."""

from __future__ import annotations

from typing import Any

from smartcity.extensions.signals.junction import JunctionConfig


def junction_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "j1",
        "name": "Place de la Gare",
        "signal_groups": [
            {
                "id": "ns",
                "min_green_s": 6,
                "max_green_s": 40,
                "amber_s": 3,
                "red_light_rules": [{"camera_id": "cam-n", "rule_id": "red-n"}],
            },
            {"id": "ew", "min_green_s": 5, "max_green_s": 30, "amber_s": 3},
            {"id": "ped", "kind": "pedestrian", "walk_s": 6, "clearance_s": 8, "max_green_s": 20},
        ],
        "conflicts": [["ns", "ew"], ["ns", "ped"], ["ew", "ped"]],
        "phases": [
            {"id": "NS", "groups": ["ns"]},
            {"id": "EW", "groups": ["ew"]},
            {"id": "PED", "groups": ["ped"]},
        ],
        "lane_groups": [
            {
                "id": "north",
                "signal_groups": ["ns"],
                "queue": {"camera_id": "cam-n", "rule_id": "q-n"},
                "count": {"camera_id": "cam-n", "rule_id": "c-n"},
                "design_flow_vph": 600,
            },
            {
                "id": "east",
                "signal_groups": ["ew"],
                "queue": {"camera_id": "cam-e", "rule_id": "q-e"},
                "design_flow_vph": 300,
            },
        ],
        "all_red_s": 2,
        "cycle": {"min_s": 40, "max_s": 120},
    }
    d.update(over)
    return d


def junction(**over: Any) -> JunctionConfig:
    return JunctionConfig.model_validate(junction_dict(**over))
