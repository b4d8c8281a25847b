"""The README's examples are real: its rule file loads, its config example validates."""

from __future__ import annotations

import re
from pathlib import Path

from smartcity.analytics import load_rules_file
from smartcity.sources.detlog import parse_detection_line

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def block_after(heading: str, lang: str) -> str:
    section = README.split(heading, 1)[1]
    m = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert m, f"no {lang} block after {heading}"
    return m.group(1)


def test_readme_rules_example_loads(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(block_after("### Rules", "yaml"))
    rules = load_rules_file(f)
    assert [r.type for r in rules] == ["line_count", "dwell"]
    assert rules[1].schedule.kind == "weekly"


def test_readme_detection_line_parses() -> None:
    text = " ".join(block_after("The detections log has one analysed frame per line", "json").split())
    rec = parse_detection_line(text, 1)
    assert rec.width == 1280
    assert rec.detections[0].cls == "person"


def test_readme_has_exactly_two_setup_commands() -> None:
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [c.strip() for c in commands] == ["scripts/setup.sh && .venv/bin/smartcity demo", "scripts/test.sh"]
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_graphql_examples_validate_against_the_schema() -> None:
    from graphql import parse, validate

    from smartcity.graphql.schema import make_schema

    api = README.split("## API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```graphql\n(.*?)```", api, re.S)
    assert len(blocks) >= 6
    schema = make_schema()._schema
    for block in blocks:
        errors = validate(schema, parse(block))
        assert not errors, (block, errors)


def test_readme_alerts_example_is_a_valid_config(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings

    f = tmp_path / "alerts.yaml"
    f.write_text(block_after("### Incidents and alerts", "yaml"))
    s = check_settings(load_settings(f, environ={}))
    assert [p["name"] for p in s.alerts["policies"]] == ["falls-and-fires", "parking"]


def test_readme_live_view_and_limits_example_is_a_valid_config(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings
    from smartcity.webrtc import LiveViewConfig

    f = tmp_path / "limits.yaml"
    f.write_text(block_after("### Live views and request limits", "yaml"))
    s = check_settings(load_settings(f, environ={}))
    assert s.server.max_body_bytes == 1 << 20
    assert LiveViewConfig.model_validate(s.live_view).advertise_addresses == ["10.20.0.5"]


def test_readme_extension_example_registers_and_its_config_validates(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.extensions import ExtensionConfig, registered
    from smartcity.settings_check import check_settings

    code = block_after("### Writing an extension", "python")
    exec(compile(code, "README.md", "exec", dont_inherit=True), {"__name__": "readme_bins", "__file__": str(tmp_path / "bins.py")})
    spec = registered()["bins"]
    assert spec.migrations == tmp_path / "migrations"
    assert spec.metadata is not None and "bins_full_events" in spec.metadata.tables
    f = tmp_path / "ext.yaml"
    f.write_text(block_after("### Extensions", "yaml"))
    s = check_settings(load_settings(f, environ={}))
    config = spec.config.model_validate(s.extensions[0])
    assert isinstance(config, ExtensionConfig)
    assert config.model_dump() == {"type": "bins", "enabled": True, "rule_type": "dwell"}
def test_readme_models_example_is_a_valid_config(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings

    f = tmp_path / "models.yaml"
    f.write_text(block_after("`analysis.models` (instead of it)", "yaml"))
    s = check_settings(load_settings(f, environ={}))
    assert s.analysis.model_list() == [{"role": "detect", "type": "darknet", "conf_threshold": 0.1}]


def test_readme_waste_example_is_a_valid_config(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.extensions.waste import WasteConfig
    from smartcity.settings_check import check_settings

    f = tmp_path / "waste.yaml"
    f.write_text(block_after("## Waste collection (bin-fill routing)", "yaml"))
    s = check_settings(load_settings(f, environ={}))
    config = WasteConfig.model_validate(s.extensions[0])
    assert [b.id for b in config.bins] == ["B-0001", "B-0002"]
    assert config.bins[1].access.seconds() == (6 * 3600, 9 * 3600)
    assert config.trucks[0].count == 3 and config.trucks[0].max_reloads == 1
    assert config.schedule.timezone == "Europe/Paris"
    assert config.sensors.tts_v3.device_bins == {"eui-70b3d57ed0000001": "B-0001"}
    assert config.mqtt is not None and [t.format for t in config.mqtt.topics] == ["native", "tts_v3"]
    assert config.fleet is not None and config.fleet.mqtt_topic == "city/waste/plans"
    assert config.roads.osrm_url == "http://127.0.0.1:5000"


def test_readme_overflow_rule_example_loads(tmp_path: Path) -> None:
    f = tmp_path / "overflow.yaml"
    f.write_text(block_after("**Cameras.** A camera that sees a bin", "yaml"))
    rules = load_rules_file(f)
    assert [(r.type, r.params["bin_id"]) for r in rules] == [("overflow", "B-0042")]
    assert rules[0].parsed_params().stay_s == 300
