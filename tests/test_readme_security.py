"""README's Security section: its reverse-proxy configuration is a valid configuration, and the
sections it links to exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECURITY = README.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]


def test_the_reverse_proxy_example_is_a_valid_config(tmp_path: Path) -> None:
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings
    from smartcity.webrtc import LiveViewConfig

    block = re.search(r"```yaml\n(.*?)```", SECURITY.split("### Behind a reverse proxy", 1)[1], re.S)
    assert block is not None
    f = tmp_path / "proxy.yaml"
    f.write_text(block.group(1))
    s = check_settings(load_settings(f, environ={}))
    assert s.server.trusted_proxies == ["127.0.0.1/32"]
    assert s.server.max_body_bytes == 1 << 20
    assert LiveViewConfig.model_validate(s.live_view).advertise_addresses == ["10.20.0.5"]


def test_the_links_of_the_security_section_name_headings_of_the_readme() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#{2,4} (.+)$", README, re.M)
    }
    links = re.findall(r"\]\(#([^)]+)\)", SECURITY)
    assert links
    assert [link for link in links if link not in anchors] == []
