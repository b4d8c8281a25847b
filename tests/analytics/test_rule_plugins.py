"""Rule types as plug-ins: the registry, the traits that replace name checks, and a rule type
added from outside the package (tests/analytics/example_rule.py) in one file plus its config entry."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analytics_helpers import CAM, frame, spec, track

import smartcity.analytics.rules
from smartcity.analytics import (
    RULE_TYPES,
    Rule,
    RuleEngine,
    load_rules_file,
    register_rule,
    renders_evidence,
    required_model_roles,
    rule_errors,
    takes_signal_states,
)
from smartcity.analytics.params import Params
from smartcity.core.errors import ValidationFailed
from smartcity.core.events import Severity

ZONE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
LINE = {"stop_line": [[0.5, 0.1], [0.5, 0.9]], "direction": [1, 0]}
EXTERNAL = {**LINE, "signal": {"source": "external"}}
IMAGE = {**LINE, "signal": {"source": "image", "roi": [0.0, 0.0, 0.1, 0.2]}}


@pytest.fixture
def speeding() -> Iterator[type[Rule]]:
    """The example module, imported (which registers it) and unloaded again afterwards."""
    module = importlib.import_module("example_rule")
    yield module.SpeedingRule
    RULE_TYPES.pop("speeding", None)
    sys.modules.pop("example_rule", None)


def test_every_module_of_the_rules_package_is_one_registered_rule_type() -> None:
    modules = {m.name for m in pkgutil.iter_modules(smartcity.analytics.rules.__path__)
               if not m.name.startswith("_")}
    built_in = {name: cls for name, cls in RULE_TYPES.items() if cls.__module__.startswith("smartcity.")}
    assert modules == set(built_in) == {"line_count", "wrong_way", "red_light", "dwell", "dumping",
                                        "abandoned_object", "zone_passage", "occupancy", "overflow",
                                        "fire", "smoke", "fall", "person_down"}
    for name, cls in built_in.items():
        assert cls.__module__ == f"smartcity.analytics.rules.{name}"


def test_traits_say_what_the_name_checks_said() -> None:
    assert {n for n, c in RULE_TYPES.items() if c.produces_counts} == {"line_count"}
    assert {n for n, c in RULE_TYPES.items() if c.accepts_signals} == {"red_light"}
    assert {n for n, c in RULE_TYPES.items() if not c.renders_evidence} == {"line_count", "occupancy"}
    assert RULE_TYPES["wrong_way"].severity is Severity.HIGH
    assert len({c.colour for c in RULE_TYPES.values()}) == len(RULE_TYPES)  # each type its own colour
    assert not renders_evidence("line_count") and renders_evidence("dwell")
    assert renders_evidence("no_longer_registered")
    # the signal API's question, asked of stored rules
    assert takes_signal_states("red_light", EXTERNAL)
    assert not takes_signal_states("red_light", IMAGE)
    assert not takes_signal_states("red_light", {"signal": "broken"})
    assert not takes_signal_states("dwell", {"zone": ZONE})
    assert not takes_signal_states("teleport", {})


def test_the_engine_hands_signals_to_rules_that_take_them() -> None:
    eng = RuleEngine([spec("red_light", EXTERNAL, id="ext"), spec("red_light", IMAGE, id="img"),
                      spec("dwell", {"zone": ZONE}, id="d")], CAM)
    eng.set_signal_state("ext", "red", 1.0)
    assert eng.rule("ext").state == "red"  # type: ignore[attr-defined]
    with pytest.raises(ValidationFailed, match="'d' is a dwell, not a red_light rule"):
        eng.set_signal_state("d", "red", 1.0)
    with pytest.raises(ValidationFailed, match="its source is not external"):
        eng.set_signal_state("img", "red", 1.0)
    with pytest.raises(ValidationFailed, match="red, amber or green"):
        eng.set_signal_state("ext", "blue", 1.0)


def test_required_model_roles_come_from_the_enabled_rules() -> None:
    class Params_(Params):
        pass

    @register_rule("needs_pose")
    class NeedsPose(Rule):
        Params = Params_
        default_classes = ("person",)
        model_roles = frozenset({"pose"})

    try:
        pose = spec("needs_pose", {}, id="p")
        assert required_model_roles([spec("dwell", {"zone": ZONE})]) == frozenset()
        assert required_model_roles([spec("dwell", {"zone": ZONE}), pose]) == {"pose"}
        assert required_model_roles([pose.model_copy(update={"enabled": False})]) == frozenset()
    finally:
        RULE_TYPES.pop("needs_pose")


def test_a_type_name_is_registered_once(speeding: type[Rule]) -> None:
    with pytest.raises(ValueError, match="'speeding' is already registered"):
        register_rule("speeding")(type("Other", (speeding,), {}))
    assert register_rule("speeding")(speeding) is speeding  # the same class again: a re-import
    assert RULE_TYPES["speeding"] is speeding and speeding.type_name == "speeding"


def test_a_rule_type_from_outside_is_one_file_plus_its_config_entry(speeding: type[Rule], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
rules:
  - id: speed-1
    camera_id: {CAM}
    type: speeding
    params: {{zone: {ZONE}, max_speed: 0.5}}
  - id: count-1
    camera_id: {CAM}
    type: line_count
    params: {{line: [[0.5, 0.0], [0.5, 1.0]], in_direction: [1, 0]}}
""")
    specs = load_rules_file(rules)
    assert [s.rule_class for s in specs] == [speeding, RULE_TYPES["line_count"]]
    assert specs[0].effective_classes() == ("car", "motorcycle")
    bad: dict[str, Any] = {"id": "s", "camera_id": CAM, "type": "speeding", "params": {"zone": ZONE, "max_speed": 0}}
    assert rule_errors(bad) == ["params.max_speed: Input should be greater than 0"]

    eng = RuleEngine(specs, CAM)
    events = []
    for k in range(20):
        t = 0.1 * k
        events += eng.update(frame(t, track(1, 0.15 + 0.08 * k, 0.3),  # 0.8 per second: too fast
                                   track(2, 0.15 + 0.02 * k, 0.6),  # 0.2 per second
                                   track(3, 0.15 + 0.08 * k, 0.8, cls="person")))  # not watched
    fast = [e for e in events if e.rule_id == "speed-1"]
    assert [(e.kind, e.track_id, e.rule_type, e.severity) for e in fast] == [
        ("speeding", 1, "speeding", Severity.MEDIUM)]
    assert fast[0].payload["speed"] == pytest.approx(0.8)
    assert fast[0].t == pytest.approx(0.1)  # its second sighting, once a speed is known
    # the built-in rule beside it still counts the fast car crossing its line
    assert sum(b.n for b in eng.count_buckets() if b.object_class == "car") == 2
    # and the server's questions are answered by its traits
    assert renders_evidence("speeding") and not takes_signal_states("speeding", {"zone": ZONE})
