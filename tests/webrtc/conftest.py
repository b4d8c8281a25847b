"""Keep WebRTC tests on the loopback interface.

aioice never offers 127.0.0.1 as a host candidate (it skips loopback on purpose, for real
deployments); the tests make it offer only 127.0.0.1, so that no packet is addressed to any
interface but loopback. This patches the ICE library's address discovery, not our code.
"""

from __future__ import annotations

import aioice.ice
import pytest


def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


@pytest.fixture(autouse=True)
def _loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", loopback_only)
