"""The HTTP gateway adapter through an httpx transport that records what the gateway receives, and
the TraCI adapter against a real SUMO (eclipse-sumo) running a signalised junction."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from signals_kit import junction

from smartcity.core.video import SignalState
from smartcity.extensions.signals.adapters import HttpAdapter, TraciAdapter
from smartcity.extensions.signals.config import HttpAdapterConfig, TraciAdapterConfig
from smartcity.extensions.signals.safety import SafetyLayer


async def test_http_gateway_gets_each_change_once_and_the_release() -> None:
    got: list[dict[str, object]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        got.append(json.loads(request.content))
        return httpx.Response(204)

    adapter = HttpAdapter(
        HttpAdapterConfig(url="http://127.0.0.1:9/signals"), "j1", httpx.MockTransport(gateway)
    )
    try:
        layer = SafetyLayer(junction(), 0.0)
        await adapter.command(layer.step(0.0, "NS"))
        await adapter.command(layer.step(1.0, "NS"))  # same aspects: not sent again
        await adapter.command(layer.step(7.0, "EW"))  # ns to amber
        await adapter.release()
    finally:
        await adapter.close()
    assert [d.get("states") for d in got[:2]] == [
        {"ns": "green", "ew": "red", "ped": "red"},
        {"ns": "amber", "ew": "red", "ped": "red"},
    ]
    assert got[2] == {"junction": "j1", "release": True}


async def test_http_gateway_refusal_is_an_error() -> None:
    adapter = HttpAdapter(
        HttpAdapterConfig(url="http://127.0.0.1:9/signals"),
        "j1",
        httpx.MockTransport(lambda r: httpx.Response(503)),
    )
    try:
        with pytest.raises(httpx.HTTPStatusError):
            await adapter.command(SafetyLayer(junction(), 0.0).step(0.0, "NS"))
    finally:
        await adapter.close()


def _sumo(tmp: Path) -> list[str]:
    sumo = pytest.importorskip("sumo")  # the eclipse-sumo wheel (extra bench)
    pytest.importorskip("traci")
    home = Path(sumo.SUMO_HOME)
    (tmp / "n.nod.xml").write_text(
        '<nodes><node id="C" x="0" y="0" type="traffic_light"/><node id="N" x="0" y="100"/>'
        '<node id="S" x="0" y="-100"/><node id="E" x="100" y="0"/><node id="W" x="-100" y="0"/></nodes>'
    )
    (tmp / "n.edg.xml").write_text(
        "<edges>"
        + "".join(
            f'<edge id="{a}{b}" from="{a}" to="{b}" numLanes="1"/>'
            for a, b in (
                ("N", "C"),
                ("C", "S"),
                ("S", "C"),
                ("C", "N"),
                ("E", "C"),
                ("C", "W"),
                ("W", "C"),
                ("C", "E"),
            )
        )
        + "</edges>"
    )
    env = dict(os.environ, SUMO_HOME=str(home))
    subprocess.run(
        [
            str(home / "bin" / "netconvert"),
            "-n",
            "n.nod.xml",
            "-e",
            "n.edg.xml",
            "-o",
            "n.net.xml",
            "--no-turnarounds",
            "true",
        ],
        cwd=tmp,
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    return [str(home / "bin" / "sumo"), "-n", str(tmp / "n.net.xml"), "--no-step-log", "true"]


async def test_traci_adapter_sets_the_state_and_gives_the_programme_back(tmp_path: Path) -> None:
    cmd = _sumo(tmp_path)
    import traci

    label = f"t-{uuid.uuid4().hex[:8]}"
    traci.start(cmd, label=label)
    conn = traci.getConnection(label)
    try:
        n = len(conn.trafficlight.getRedYellowGreenState("C"))
        links = {"ns": [0], "ew": [1], "ped": list(range(2, n))}
        adapter = TraciAdapter(TraciAdapterConfig(port=1, tls_id="C", links=links), connect=lambda: conn)
        layer = SafetyLayer(junction(), 0.0)
        frame = layer.step(0.0, "EW")
        assert frame.states["ew"] is SignalState.GREEN
        await adapter.command(frame)
        conn.simulationStep()
        assert conn.trafficlight.getRedYellowGreenState("C") == "rG" + "r" * (n - 2)
        await adapter.release()
        conn.simulationStep()
        assert conn.trafficlight.getProgram("C") == "0"  # netconvert's own programme runs again
    finally:
        conn.close()
