"""The server process is SIGKILLed just after an incident commits (before or during the SMS
send): after a restart the SMS is sent, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from alert_helpers import ACCOUNT_SID, AUTH_TOKEN
from twilio_loopback import LoopbackTwilio

from smartcity.core.events import new_event_id
from smartcity.core.incidents import DeliveryState
from smartcity.storage.db import Database
from smartcity.storage.outbox import Outbox

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("alerting_proc.py")
ROOT = Path(__file__).resolve().parents[2]


async def _spawn(db_url: str, api: str, event_id: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), db_url, api, ACCOUNT_SID, AUTH_TOKEN, event_id,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT),
    )


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


@pytest.mark.parametrize("when", ["after_commit", "during_send"])
async def test_sigkill_after_commit_then_restart_sends_the_sms_exactly_once(
    when: str, pg_db_url: str, twilio_server: LoopbackTwilio
) -> None:
    hold = asyncio.Event()
    twilio_server.hold = hold  # Twilio does not answer until released
    first = await _spawn(pg_db_url, twilio_server.base_url, new_event_id())
    try:
        assert await _line(first) == "COMMITTED"
        if when == "during_send":
            await asyncio.wait_for(twilio_server.got_request.wait(), 10)
        await _kill(first)
    finally:
        await _kill(first)
    assert first.returncode == -signal.SIGKILL
    hold.set()  # a request that was in flight completes on the server side
    await asyncio.sleep(0.2)
    assert len(twilio_server.messages) <= 1

    second = await _spawn(pg_db_url, twilio_server.base_url, "")
    db = Database(pg_db_url)
    try:
        assert await _line(second) == "READY"
        outbox = Outbox(db)
        deadline = time.monotonic() + 15
        while True:
            rows = await outbox.list_deliveries()
            if rows and rows[0].state == DeliveryState.SENT:
                break
            assert time.monotonic() < deadline, f"not sent after restart: {rows}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        await _kill(second)
        await db.dispose()
    assert len(rows) == 1
    assert len(twilio_server.messages) == 1
    assert twilio_server.messages[0].idempotency_key == rows[0].idempotency_key
    assert rows[0].attempts >= 1
    if when == "during_send":
        # the first process's request reached Twilio, the restart sent it again: de-duplicated
        assert twilio_server.requests >= 2
