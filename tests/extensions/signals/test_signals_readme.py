"""README's Traffic-signal control section: its configuration example is a valid `signals` entry."""

from __future__ import annotations

from pathlib import Path

import yaml

from smartcity.extensions.registry import parse_extensions

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_the_signals_example_is_a_valid_config() -> None:
    section = README.split("\n## Traffic-signal control\n", 1)[1].split("\n## ", 1)[0]
    doc = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    plan = parse_extensions(doc["extensions"])
    (entry,) = plan.entries
    assert entry.name == "signals"
    j = entry.config.junctions[0]  # type: ignore[attr-defined]
    assert j.controller.type == "max_pressure" and j.adapter.type == "ntcip" and len(j.phases) == 3
