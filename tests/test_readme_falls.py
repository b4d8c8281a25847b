"""The README's "Emergency: falls and people down" examples are real: the models config validates
and the rules load."""

from __future__ import annotations

import re
from pathlib import Path

from smartcity.analytics import load_rules_file, required_model_roles

ROOT = Path(__file__).resolve().parent.parent
SECTION = (
    (ROOT / "README.md").read_text().split("## Emergency: falls and people down", 1)[1].split("\n## ", 1)[0]
)


def test_falls_examples_validate(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings

    config, rules = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)[:2]
    (tmp_path / "models.yaml").write_text(config)
    s = check_settings(load_settings(tmp_path / "models.yaml", environ={}))
    assert [m["type"] for m in s.analysis.model_list()] == ["darknet", "movenet"]
    (tmp_path / "rules.yaml").write_text(rules)
    loaded = load_rules_file(tmp_path / "rules.yaml")
    assert [r.type for r in loaded] == ["fall", "person_down"]
    assert loaded[0].parsed_params().down_s == 3 and loaded[1].parsed_params().down_s == 10
    assert required_model_roles(loaded) == {"pose"}
