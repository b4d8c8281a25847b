"""ray_cluster.yaml is a cluster-launcher config that `ray up` accepts (Ray's own schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import ray
import yaml

from smartcity.core.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _cluster() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    return data


def test_validates_against_rays_schema() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(_cluster(), schema)


def test_structure_for_ray_up() -> None:
    c = _cluster()
    for key in ("cluster_name", "provider", "auth", "available_node_types", "head_node_type", "max_workers"):
        assert key in c, key
    types = c["available_node_types"]
    assert c["head_node_type"] in types
    for name, t in types.items():
        assert isinstance(t["resources"], dict), name
        assert "node_config" in t, name
        assert 0 <= t["min_workers"] <= t["max_workers"], name
    gpu = [n for n, t in types.items() if t["resources"].get("GPU", 0) >= 1]
    assert gpu, "a GPU worker node type is required for camera groups and inference"
    assert sum(t["min_workers"] for t in types.values()) <= c["max_workers"]
    assert any("pip install" in cmd and "smartcity" in cmd for cmd in c["setup_commands"])
    assert any("smartcity serve" in cmd for cmd in c["head_start_ray_commands"])
    assert any("--head" in cmd for cmd in c["head_start_ray_commands"])


def test_mounted_production_config_is_valid() -> None:
    c = _cluster()
    local = c["file_mounts"]["/home/ubuntu/smartcity.yaml"]
    s = load_settings(ROOT / local, environ={})
    assert s.database.url.startswith("postgresql+asyncpg://")
    assert s.ray.address == "auto"
    assert s.server.introspection is False


def test_example_config_is_valid() -> None:
    s = load_settings(ROOT / "config" / "example.yaml", environ={})
    assert len(s.cameras) == 2
