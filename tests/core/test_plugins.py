"""Plug-ins of a third party are found through entry points, in a fresh process (as a Ray actor
or a server would start), and a broken one is reported while the others load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent

PROBE = """
import json
from smartcity.analytics import RULE_TYPES
from smartcity.analytics import rules
from smartcity.integrations import channels
from smartcity.integrations.channel import channel_class
from smartcity.models.registry import MODELS, model_type
before = "box_pose" in MODELS
try:
    pose = sorted(r.value for r in model_type("box_pose").roles)
except Exception as exc:
    pose = str(exc)
print(json.dumps({
    "box_pose_lazy": not before,
    "box_pose": pose,
    "speeding": "speeding" in RULE_TYPES,
    "line_count": "line_count" in RULE_TYPES,
    "pager": channel_class("pager") is not None,
    "sms": channel_class("sms") is not None,
    "rule_failures": [[f.name, f.missing_package] for f in rules.unavailable],
    "channel_failures": [[f.name, f.reason] for f in channels.unavailable],
}))
"""


def _site(tmp_path: Path, entry_points: str) -> Path:
    site = tmp_path / "site"
    dist = site / "city_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: city-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    (site / "needs_missing.py").write_text("import smartcity_no_such_package  # noqa: F401\n")
    return site


def _probe(site: Path) -> dict[str, object]:
    env = dict(os.environ)
    path = [str(site), str(TESTS), str(TESTS / "analytics"), str(TESTS / "integrations"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_rule_types_channels_and_models_of_an_installed_distribution_are_found(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        "[smartcity.rules]\nspeeding = example_rule\n\n[smartcity.channels]\npager = example_channel\n\n"
        "[smartcity.models]\nbox_pose = example_models\n",
    )
    got = _probe(site)
    assert got["box_pose_lazy"] is True  # imported only when a config names it
    assert got["box_pose"] == ["pose"]
    assert got["speeding"] is True
    assert got["pager"] is True
    assert got["line_count"] is True and got["sms"] is True
    assert got["rule_failures"] == [] and got["channel_failures"] == []


def test_a_plugin_with_a_missing_dependency_is_reported_and_the_others_load(tmp_path: Path) -> None:
    site = _site(tmp_path, "[smartcity.rules]\nbroken = needs_missing\nspeeding = example_rule\n")
    got = _probe(site)
    assert got["rule_failures"] == [["broken", "smartcity_no_such_package"]]
    assert got["speeding"] is True and got["line_count"] is True
    assert got["pager"] is False  # not declared this time
    assert "unknown model type 'box_pose'" in str(got["box_pose"])
