"""A fall reaches emergency services end to end: `smartcity serve` (local Ray, SQLite) plays a real
UP-Fall clip as a file camera; YOLOv3-tiny, the movenet pose model and the `fall` rule find the
fall; fusion opens an incident; the `cap` channel (policy `immediate`) POSTs a signed CAP Alert
to a loopback emergency-services endpoint and places a voice call through the real Twilio SDK
to the loopback Twilio; an operator dismisses the incident over GraphQL and a CAP Cancel
follows. Every CAP document is checked against the OASIS XSD by the receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_helpers import ACCOUNT_SID, AUTH_TOKEN
from cap_receiver import CapReceiver
from testkit import free_port, session_processes
from twilio_loopback import LoopbackTwilio

from smartcity.models.install import install_default_model
from smartcity.models.pose_install import install_pose_model

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SMARTCITY_SHARED_DATA", REPO.parent / "shared" / "data"))
CLIP = SHARED_DATA / "falls" / "upfall-subject1" / "Activity1" / "Trial1Cam1.mp4"
SECRET = "samu-endpoint-secret-0123456789"
ONCALL = "+33600000001"
PASSWORD = "chief's password"


@pytest.fixture
def fall_clip() -> Path:
    if not CLIP.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CLIP} is missing (CI must have ../shared/data)")
        pytest.skip("../shared/data is absent")
    return CLIP


@pytest.fixture
async def samu() -> AsyncIterator[CapReceiver]:
    async with CapReceiver(SECRET) as receiver:
        yield receiver


def _config(tmp: Path, port: int, clip: Path, cap_url: str, twilio_url: str) -> Path:
    cfg = tmp / "smartcity.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}}}
database: {{url: "sqlite+aiosqlite:///{tmp}/db.sqlite"}}
storage: {{data_dir: "{tmp}/data"}}
ray: {{num_cpus: 2, object_store_mb: 150}}
analysis:
  inference_cpus: 0.5
  models:
    - {{role: detect, type: darknet, conf_threshold: 0.1}}
    - {{role: pose, type: movenet}}
  motion: {{enabled: false}}
camera_groups: [{{name: hall}}]
cameras_policy: {{file_roots: ["{clip.parent}"]}}
cameras:
  - {{id: cam-1, name: "Hall", url: "file://{clip}", group: hall, analysis_fps: 6}}
alerts:
  dispatch:
    sender: video@massy.example
    language: fr-FR
    default_policy: {{mode: immediate}}
    places: {{cam-1: {{lat: 48.7309, lon: 2.2713, address: "1 place de France, Massy"}}}}
    endpoints: [{{name: samu, url: "{cap_url}", secret: "{SECRET}"}}]
    twilio: {{account_sid: "{ACCOUNT_SID}", auth_token: "{AUTH_TOKEN}", from_number: "+33100000000",
              api_base_url: "{twilio_url}"}}
  policies:
    - name: falls
      kinds: [fall]
      notify: [{{channel: cap, target: samu}}, {{channel: cap, target: "voice:{ONCALL}"}}]
  dispatcher: {{poll_s: 0.05, backoff_initial_s: 0.05, backoff_max_s: 0.2}}
"""
    )
    return cfg


@pytest.fixture
def server(
    tmp_path: Path, fall_clip: Path, samu: CapReceiver, twilio_server: LoopbackTwilio
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    models = REPO / "models"
    install_default_model(models)
    install_pose_model(models)
    port = free_port()
    cfg = _config(tmp_path, port, fall_clip, samu.url, twilio_server.base_url)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "SMARTCITY_MODEL_DIR": str(models)}
    env.pop("SMARTCITY_CONFIG", None)
    for args, stdin in (
        (["migrate", "--config", str(cfg)], ""),
        (
            ["users", "create", "chief", "--role", "admin", "--password-stdin", "--config", str(cfg)],
            PASSWORD + "\n",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "smartcity.cli", *args],
            cwd=tmp_path, env=env, input=stdin.encode(), capture_output=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "serve", "--config", str(cfg)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for p in session_processes(proc.pid):
            p.kill()
        log.close()


async def _gql(client: httpx.AsyncClient, base: str, query: str, token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = await client.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=30)
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    return body["data"]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _login(client: httpx.AsyncClient, base: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 240
    while True:
        # the end of the server's log says why (a loaded machine once stopped its Ray start-up)
        assert proc.poll() is None, f"server exited during start-up: {_tail(log)}"
        try:
            if (await client.get(f"{base}/healthz", timeout=5)).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server not healthy in time"
        await asyncio.sleep(0.5)
    data = await _gql(
        client,
        base,
        f'mutation {{ login(username: "chief", password: "{PASSWORD}") {{ ... on LoginSuccess {{ token }} }} }}',
    )
    token: str = data["login"]["token"]
    return token


async def test_a_filmed_fall_is_dispatched_as_cap_and_a_call_then_cancelled_by_the_operator(
    server: tuple[str, subprocess.Popen[bytes]], samu: CapReceiver, twilio_server: LoopbackTwilio, tmp_path: Path
) -> None:
    base, proc = server
    async with httpx.AsyncClient() as client:
        token = await _login(client, base, proc, tmp_path / "server.log")  # the fixture's log
        rule = await _gql(client, base, """mutation { createRule(id: "hall-fall", input: {
            cameraId: "cam-1", type: "fall", params: {down_s: 2, max_fall_s: 3} }) {
            __typename ... on Rule { id } ... on ValidationError { errors { field message } } } }""", token)  # fmt: skip
        assert rule["createRule"] == {"__typename": "Rule", "id": "hall-fall"}, rule

        # the clip shows the subject falling about 3 s in (it loops): the Alert and the call
        [alert] = await samu.wait("Alert", timeout_s=300)
        assert alert.signed and alert.schema_error is None
        assert alert.field("info/category") == "Health" and alert.field("info/event") == "Person fallen"
        assert alert.field("info/area/circle").startswith("48.730900,2.271300 ")
        await twilio_server.wait_calls(1, timeout_s=60)
        call = twilio_server.calls[0]
        assert call.to == ONCALL and "<Say" in call.twiml and "Massy" in call.twiml

        incidents = await _gql(
            client, base, '{ incidents(kind: "fall") { edges { node { id kind state cameraIds } } } }', token
        )
        open_falls = [e["node"] for e in incidents["incidents"]["edges"] if e["node"]["state"] == "open"]
        assert open_falls and open_falls[0]["cameraIds"] == ["cam-1"]
        dismissed = await _gql(client, base, f"""mutation {{ dismissIncident(id: "{open_falls[0]["id"]}",
            comment: "the person got up") {{ __typename ... on IncidentType {{ state }} }} }}""", token)  # fmt: skip
        assert dismissed["dismissIncident"] == {"__typename": "IncidentType", "state": "dismissed"}

        [cancel] = await samu.wait("Cancel", timeout_s=60)
        assert cancel.signed and cancel.schema_error is None
        assert alert.field("identifier") in cancel.field("references")
