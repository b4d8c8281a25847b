"""What one request may make the server read and store: body size (413 before reading it), JSON
nesting (400, not a 500), NaN and Infinity (refused naming the field; never in a response)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from api_helpers import Client, connect_ws, running_server, subscribe

from smartcity.app import Server

Api = tuple[str, Server, dict[str, Client]]
RULE_FIELDS = "__typename ... on Rule { id schedule params } ... on ValidationError { errors { field message } }"
CREATE = (
    "mutation($cam: ID!, $schedule: JSON, $params: JSON!) { createRule(input: "
    '{cameraId: $cam, type: "dwell", schedule: $schedule, params: $params}) { ' + RULE_FIELDS + " } }"
)
ZONE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def strict_json(text: str) -> Any:
    """Parse as a browser does: NaN and Infinity are not JSON."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} in a response")

    return json.loads(text, parse_constant=refuse)


async def post(client: Client, query: str, **variables: Any) -> Any:
    """POST as a client that writes NaN and Infinity into its JSON, as Python's json does."""
    body = json.dumps({"query": query, "variables": variables})
    r = await client.http.post("/graphql", content=body, headers={
        "authorization": f"Bearer {client.token}", "content-type": "application/json"})
    assert r.status_code == 200, r.text
    return strict_json(r.text)


async def raw_request(base: str, head: str, body_chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and some body bytes over a plain socket, then read the answer; the
    body may be incomplete: a server that waits for the rest never answers (the test times out)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode())
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(30):
            status_line = await reader.readline()
            answer = await reader.read(4096)
        return int(status_line.split()[1]), answer
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def test_an_announced_oversized_body_is_refused_before_it_is_sent(api: Api) -> None:
    base, _, clients = api
    head = (
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {150 * 1024 * 1024}\r\n\r\n"
    )
    status, answer = await raw_request(base, head, [b'{"query": "'])  # the other 150 MB never come
    assert status == 413
    assert b"at most 1048576 bytes" in answer
    # the server goes on serving everyone else
    assert (await clients["admin"].gql("{ cameras { id } }"))["data"]["cameras"]


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(api: Api) -> None:
    base, _, clients = api
    head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 17  # 1.06 MiB, and no final chunk: never ends
    status, _ = await raw_request(base, head, chunks)
    assert status == 413
    # a body under the limit goes through, chunked or not

    async def small_body() -> AsyncIterator[bytes]:
        yield json.dumps({"query": "{ cameras { id } }"}).encode()

    r = await clients["admin"].http.post(
        "/graphql", content=small_body(),
        headers={"authorization": f"Bearer {clients['admin'].token}", "content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["data"]["cameras"]


async def test_a_websocket_message_over_the_limit_closes_its_connection(api: Api) -> None:
    base, _, clients = api
    ws = await connect_ws(base, clients["admin"].token)
    try:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "x" * (1 << 20)}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)  # nothing comes before the close
        # 1009, message too big: from uvicorn's ws_max_size or, behind it, from BodySizeLimit
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        await ws.close()
    other = await connect_ws(base, clients["admin"].token)  # the server goes on
    try:
        await subscribe(other, "2", "subscription { alerts { incidentId } }")
    finally:
        await other.close()


async def test_json_nested_too_deep_is_a_400_and_a_deep_json_input_is_refused(api: Api) -> None:
    _, _, clients = api
    admin = clients["admin"]
    deep = "[" * 2000 + "]" * 2000
    body = '{"query": "{ cameras { id } }", "variables": {"x": ' + deep + "}}"
    r = await admin.http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "Unable to parse request body as JSON" in r.text
    nested: Any = ZONE
    for _ in range(40):
        nested = {"a": nested}
    out = await admin.gql(CREATE, cam="cam-p", params={"zone": ZONE, "deep": nested})
    assert out["data"] is None
    assert "JSON nested deeper than 32 levels at deep.a.a" in out["errors"][0]["message"]


async def test_non_finite_numbers_are_refused_naming_the_field(api: Api) -> None:
    _, _, clients = api
    op = clients["police-op"]
    out = await post(op, CREATE, cam="cam-p", schedule={"kind": "until", "until": float("inf")}, params={"zone": ZONE})
    assert out["data"] is None
    message = out["errors"][0]["message"]
    assert "schedule" in message and "until: inf is not a finite number" in message
    out = await post(op, CREATE, cam="cam-p", params={"zone": ZONE, "threshold_s": float("nan")})
    assert "threshold_s: nan is not a finite number" in out["errors"][0]["message"]
    assert (await post(op, "{ rules { id schedule } }"))["data"]["rules"] == []


async def test_a_stored_non_finite_number_cannot_break_responses(tmp_path: Path) -> None:
    # a rule stored before numbers were checked (SQLite keeps JSON as text, NaN included)
    async with running_server(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/old.db") as (base, server):
        spec = {"id": "old", "camera_id": "cam-p", "type": "dwell", "params": {"zone": ZONE, "threshold_s": 30.0},
                "schedule": {"kind": "until", "until": float("inf")}}
        await server.api_services().rules.save(spec, actor="before-the-fix", shapes=[ZONE])
        admin = Client(base)
        try:
            await admin.login("admin")
            r = await admin.http.post("/graphql", json={"query": "{ rules { id schedule } }"},
                                      headers={"authorization": f"Bearer {admin.token}"})
            assert r.status_code == 200
            assert strict_json(r.text)["data"]["rules"] == [{"id": "old", "schedule": {"kind": "until", "until": None}}]
        finally:
            await admin.close()
