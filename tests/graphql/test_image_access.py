"""Camera snapshots and evidence pictures over real HTTP (uvicorn): the same principal check
as GraphQL (account, revocation, role and scope read from the database on every request),
short-lived image URLs bound to one picture, no token in the access log, and answers 401
(never 500) to garbage tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets
from api_helpers import Api, Client, connect_ws

from smartcity.core.events import RuleEvent
from smartcity.graphql.auth import Principal

EVENTS = "{ events(first: 10) { edges { node { id cameraId evidenceUrl } } } }"


async def _evidence(api: Api, camera_id: str) -> RuleEvent:
    """A rule event of `camera_id` with an evidence picture where the server keeps them."""
    _, server, _ = api
    assert server.writer is not None
    root = server.settings.storage.data_dir / "evidence"
    root.mkdir(parents=True, exist_ok=True)
    picture = root / f"{camera_id}.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xd9" + camera_id.encode())
    ev = RuleEvent(camera_id=camera_id, t=time.time(), rule_id="r", rule_type="dwell", kind="dwell_exceeded", evidence_path=str(picture))
    await server.writer.write([ev])
    return ev


def _header(client: Client) -> dict[str, str]:
    return {"authorization": f"Bearer {client.token}"}


async def _evidence_url(client: Client, camera_id: str) -> str:
    body = await client.gql(EVENTS)
    urls = [e["node"]["evidenceUrl"] for e in body["data"]["events"]["edges"] if e["node"]["cameraId"] == camera_id]
    assert len(urls) == 1, body
    url: str = urls[0]
    return url


async def test_a_disabled_users_token_no_longer_opens_pictures(api: Api) -> None:
    base, _, clients = api
    ev = await _evidence(api, "cam-p")
    viewer = clients["police-viewer"]
    http = viewer.http
    path = f"/evidence/{ev.event_id}.jpg"
    got = await http.get(path, headers=_header(viewer))
    assert got.status_code == 200 and got.content.endswith(b"cam-p")
    image_url = await _evidence_url(viewer, "cam-p")
    # the camera is in scope: a snapshot is refused only for want of a frame (no Ray here)
    snap = await http.get("/cameras/cam-p/snapshot.jpg", headers=_header(viewer))
    assert snap.status_code == 404 and "no frame" in snap.text

    res = await clients["admin"].gql('mutation { updateUser(username: "police-viewer", input: {disabled: true}) { __typename } }')
    assert res["data"]["updateUser"]["__typename"] == "User"
    # the token's signature is still good, but the account is disabled and its tokens void
    for url, headers in ((path, _header(viewer)), (image_url, {}), ("/cameras/cam-p/snapshot.jpg", _header(viewer))):
        r = await http.get(url, headers=headers)
        assert r.status_code == 401, (url, r.status_code, r.text)


async def test_a_user_moved_to_another_group_sees_that_groups_pictures_only(api: Api) -> None:
    _, _, clients = api
    ev_p = await _evidence(api, "cam-p")
    ev_t = await _evidence(api, "cam-t")
    op = clients["police-op"]
    assert (await op.http.get(f"/evidence/{ev_p.event_id}.jpg", headers=_header(op))).status_code == 200
    assert (await op.http.get(f"/evidence/{ev_t.event_id}.jpg", headers=_header(op))).status_code == 404
    old = dict(_header(op))
    move = 'mutation { updateUser(username: "police-op", input: {groups: ["technical"]}) { __typename } }'
    assert (await clients["admin"].gql(move))["data"]["updateUser"]["__typename"] == "User"
    assert (await op.http.get(f"/evidence/{ev_p.event_id}.jpg", headers=old)).status_code == 401
    await op.login("police-op")
    assert (await op.http.get(f"/evidence/{ev_p.event_id}.jpg", headers=_header(op))).status_code == 404
    assert (await op.http.get(f"/evidence/{ev_t.event_id}.jpg", headers=_header(op))).status_code == 200
    snap = await op.http.get("/cameras/cam-p/snapshot.jpg", headers=_header(op))
    assert snap.status_code == 404 and "no camera" in snap.text


async def test_image_urls_carry_a_short_lived_token_bound_to_one_picture(api: Api) -> None:
    base, server, clients = api
    ev_p = await _evidence(api, "cam-p")
    viewer = clients["police-viewer"]
    http = viewer.http
    url = await _evidence_url(viewer, "cam-p")
    parts = urlsplit(url)
    assert parts.path == f"/evidence/{ev_p.event_id}.jpg"
    token = parse_qs(parts.query)["token"][0]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == "smartcity:image" and claims["path"] == parts.path
    assert 0 < claims["exp"] - claims["iat"] <= 600  # minutes, not the API token's hours
    got = await http.get(url)
    assert got.status_code == 200 and got.content.endswith(b"cam-p")

    # the picture token opens that picture only, and is not an API token
    snap = await http.get(f"/cameras/cam-p/snapshot.jpg?token={token}")
    assert snap.status_code == 401
    body = await Client(base, token).gql("{ cameras { id } }")
    assert body["data"] is None and "not authenticated" in body["errors"][0]["message"]
    # an API token does not go into URLs (access logs, browser history): refused there
    assert (await http.get(f"{parts.path}?token={viewer.token}")).status_code == 401
    # an expired picture token
    me = (await viewer.gql("{ me { id username role } }"))["data"]["me"]
    assert server.signer is not None
    stale = server.signer.issue_image(Principal(me["id"], me["username"], me["role"], None), parts.path, now=time.time() - 3600)
    assert (await http.get(f"{parts.path}?token={stale}")).status_code == 401

    # snapshot URLs of the cameras in scope carry their own picture token
    cams = (await viewer.gql("{ cameras { id snapshotUrl } }"))["data"]["cameras"]
    assert [c["id"] for c in cams] == ["cam-p"]
    snap_url = urlsplit(cams[0]["snapshotUrl"])
    assert snap_url.path == "/cameras/cam-p/snapshot.jpg" and "token" in parse_qs(snap_url.query)
    r = await http.get(cams[0]["snapshotUrl"])
    assert r.status_code == 404 and "no frame" in r.text  # authorised; no Ray here to give a frame


async def test_the_access_log_never_shows_a_token(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    base, _, clients = api
    ev = await _evidence(api, "cam-p")
    viewer = clients["police-viewer"]
    url = await _evidence_url(viewer, "cam-p")
    # uvicorn logs HTTP requests on uvicorn.access, WebSocket handshakes on uvicorn.error
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(caplog.handler)
        lg.setLevel(logging.INFO)
    try:
        assert (await viewer.http.get(url)).status_code == 200
        assert (await viewer.http.get(f"/evidence/{ev.event_id}.jpg?size=1&token=some-secret-value")).status_code == 401
        ws = await websockets.connect(base.replace("http", "ws") + "/graphql?token=ws-secret-value", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.close()
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
            lg.removeHandler(caplog.handler)
    records = {id(r): r for r in caplog.records if r.name in ("uvicorn.access", "uvicorn.error")}  # caught once
    lines = [r.getMessage() for r in records.values() if "/" in r.getMessage()]
    assert len(lines) == 3, lines
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert all(s not in line for line in lines for s in (token, "some-secret-value", "ws-secret-value")), lines
    assert f"/evidence/{ev.event_id}.jpg?token=[redacted]" in lines[0]
    assert "?size=1&token=[redacted]" in lines[1]
    assert "/graphql?token=[redacted]" in lines[2]


@pytest.mark.parametrize("token", ["tökén", "v1.é.ü", "eyJhbGciOiJIUzI1NiJ9.ÿ.€"])
async def test_garbage_tokens_get_401_not_a_stack_trace(api: Api, token: str) -> None:
    base, _, clients = api
    ev = await _evidence(api, "cam-p")
    header = {"authorization": b"Bearer " + token.encode("utf-8")}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/graphql", json={"query": "{ cameras { id } }"}, headers=header)
        assert r.status_code == 200 and "not authenticated" in r.json()["errors"][0]["message"], r.text
        for path in (f"/evidence/{ev.event_id}.jpg", "/cameras/cam-p/snapshot.jpg"):
            assert (await http.get(path, headers=header)).status_code == 401
            assert (await http.get(path, params={"token": token})).status_code == 401
    ws = await connect_ws(base, token)
    try:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    finally:
        await ws.close()
