from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.core.config import load_settings
from smartcity.core.errors import ConfigError


def test_defaults_are_embedded() -> None:
    s = load_settings(environ={})
    assert s.database.url.startswith("sqlite+aiosqlite:///")
    assert s.ray.address is None
    assert s.server.host == "127.0.0.1"


def test_every_error_listed_with_its_path(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "server: {port: 99999, colour: blue}\n"
        "cameras:\n"
        "  - {id: a, url: 'rtsp://cam/1'}\n"
        "  - {id: b, url: 'rtsp:///nohost'}\n"
        "  - {id: c, url: 'ftp://x', analysis_fps: 0}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    errs = info.value.errors
    assert "server.port: Input should be less than or equal to 65535" in errs
    assert "server.colour: unknown field" in errs
    assert any(e.startswith("cameras[1].url:") and "missing host" in e for e in errs)
    assert any(e.startswith("cameras[2].url:") and "ftp" in e for e in errs)
    assert any(e.startswith("cameras[2].analysis_fps:") for e in errs)
    assert len(errs) == 5


def test_cross_field_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "camera_groups: [{name: police}]\n"
        "cameras:\n"
        "  - {id: a, url: 'rtsp://cam/1', group: police}\n"
        "  - {id: a, url: 'rtsp://cam/2', group: nope}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert info.value.errors == [
        "cameras[1].id: duplicate camera id 'a'",
        "cameras[1].group: unknown group 'nope' (not in camera_groups)",
    ]


def test_environment_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("server: {port: 8100}\ndatabase: {url: 'sqlite+aiosqlite:///x.db'}\n")
    s = load_settings(f, environ={"SMARTCITY_SERVER__PORT": "8200"})
    assert s.server.port == 8200
    assert s.database.url == "sqlite+aiosqlite:///x.db"


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    f = tmp_path / "y.yaml"
    f.write_text("server:\n  port: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert "not valid YAML" in info.value.errors[0]
    assert "line" in info.value.errors[0]


def test_extensions_section_is_a_list_of_entries(tmp_path: Path) -> None:
    f = tmp_path / "ext.yaml"
    f.write_text("extensions:\n  - {type: bins, every_s: 30}\n  - {type: signals}\n")
    s = load_settings(f, environ={})
    # the entries' own fields are checked by the extension registry (smartcity.settings_check)
    assert s.extensions == [{"type": "bins", "every_s": 30}, {"type": "signals"}]
    assert load_settings(environ={}).extensions == []
    f.write_text("extensions: {type: bins}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert info.value.errors == ["extensions: Input should be a valid list"]
def test_analysis_models_with_roles_or_the_detector_shorthand(tmp_path: Path) -> None:
    from smartcity.settings_check import check_settings

    f = tmp_path / "models.yaml"
    f.write_text(
        "analysis:\n"
        "  models:\n"
        "    - {role: detect, type: onnx, model: /models/yolo11n.onnx, conf_threshold: 0.2}\n"
    )
    s = check_settings(load_settings(f, environ={}))
    assert s.analysis.model_list() == [{"role": "detect", "type": "onnx", "model": "/models/yolo11n.onnx",
                                        "conf_threshold": 0.2}]  # fmt: skip
    # without `models`, `detector` is the one detect model (the default: YOLOv3-tiny)
    s = load_settings(environ={})
    assert s.analysis.model_list() == [{"type": "darknet", "conf_threshold": 0.1, "role": "detect"}]

    f.write_text("analysis:\n  detector: {type: darknet}\n  models: [{role: detect, type: darknet}]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert info.value.errors == [
        "analysis.models: give analysis.models or analysis.detector (a single detect model), not both"
    ]

    f.write_text(
        "analysis:\n"
        "  models:\n"
        "    - {role: detect, type: darknet, colour: red}\n"
        "    - {role: pose, type: darknet}\n"
    )
    with pytest.raises(ConfigError) as info:
        check_settings(load_settings(f, environ={}))
    assert info.value.errors == [
        "analysis.models[0].colour: unknown field",
        "analysis.models[1].role: model type 'darknet' cannot play 'pose' (only ['detect'])",
    ]
    f.write_text("analysis:\n  detector: {type: onnx}\n")
    with pytest.raises(ConfigError) as info:
        check_settings(load_settings(f, environ={}))
    assert info.value.errors == ["analysis.detector.model: field required"]


def test_outbox_off_the_node_needs_postgresql_and_resources_are_bounded(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("actors: {outbox: database}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert any("actors.outbox: database needs database.url on PostgreSQL" in e for e in info.value.errors)
    f.write_text("actors: {outbox: database, group_resources: {camera_slots: 1}, inference_per_node: true}\n")
    s = load_settings(f, environ={"SMARTCITY_DATABASE__URL": "postgresql+asyncpg://u@127.0.0.1/db"})
    assert s.actors.outbox == "database"
    assert s.actors.group_resources == {"camera_slots": 1}
    f.write_text("cluster: {enabled: true}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert any(
        "cluster.enabled needs database.url on PostgreSQL, actors.outbox: database, ray.address" in e
        for e in info.value.errors
    )
    f.write_text("cluster: {enabled: true, server_id: api-1}\nactors: {outbox: database}\nray: {address: auto}\n")
    s = load_settings(f, environ={"SMARTCITY_DATABASE__URL": "postgresql+asyncpg://u@127.0.0.1/db"})
    assert (s.cluster.enabled, s.cluster.server_id) == (True, "api-1")
    f.write_text("actors: {group_resources: {camera_slots: -1}}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert any("camera_slots" in e and "amount" in e for e in info.value.errors)
