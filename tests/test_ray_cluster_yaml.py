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


def test_camera_nodes_offer_what_the_production_groups_require() -> None:
    s = load_settings(ROOT / _cluster()["file_mounts"]["/home/ubuntu/smartcity.yaml"], environ={})
    assert s.actors.outbox == "database"  # several nodes: a node loss must lose nothing
    required = s.actors.group_resources
    assert required
    offering = [n for n, t in _cluster()["available_node_types"].items() if set(required) <= set(t["resources"])]
    assert offering, f"no node type of ray_cluster.yaml offers {required}"
    assert "head" not in offering  # the server node runs no camera actors


def test_kuberay_manifest_mirrors_the_cluster_with_token_auth() -> None:
    m: dict[str, Any] = yaml.safe_load((ROOT / "kuberay_raycluster.yaml").read_text())
    assert (m["apiVersion"], m["kind"]) == ("ray.io/v1", "RayCluster")
    assert m["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    spec = m["spec"]
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "$KUBERAY_GEN_RAY_START_CMD" in head["args"][0] and "smartcity serve" in head["args"][0]
    pods = [head] + [g["template"]["spec"]["containers"][0] for g in spec["workerGroupSpecs"]]
    for pod in pods:
        env = {e["name"]: e for e in pod["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "smartcity-ray-token"
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        resources = json.loads(json.loads(group["rayStartParams"]["resources"]))
        assert resources["camera_slots"] > 0, group["groupName"]
    assert any(g["rayStartParams"].get("num-gpus") == "1" for g in spec["workerGroupSpecs"])


def test_every_ray_start_has_the_servers_malloc_settings() -> None:
    """The nodes' camera groups and inference actors run with the allocator settings that keep
    memory flat (few arenas, a fixed mmap threshold), as the server's own local Ray does."""
    from smartcity.actors.ray_node import MALLOC_ARENA_ENV, MALLOC_ARENAS, MALLOC_MMAP_ENV, MMAP_THRESHOLD

    wanted = {MALLOC_ARENA_ENV: str(MALLOC_ARENAS), MALLOC_MMAP_ENV: str(MMAP_THRESHOLD)}
    c = _cluster()
    starts = [cmd for key in ("head_start_ray_commands", "worker_start_ray_commands") for cmd in c[key] if "ray start" in cmd]
    assert len(starts) == 2
    for cmd in starts:
        for name, value in wanted.items():
            assert f"{name}={value} " in cmd, (name, cmd)
    m: dict[str, Any] = yaml.safe_load((ROOT / "kuberay_raycluster.yaml").read_text())
    spec = m["spec"]
    pods = [spec["headGroupSpec"]["template"]["spec"]["containers"][0]]
    pods += [g["template"]["spec"]["containers"][0] for g in spec["workerGroupSpecs"]]
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["env"]}
        for name, value in wanted.items():
            assert env.get(name) == value, (pod["name"], name)
