"""The operator API over real HTTP and WebSocket against uvicorn: authentication, the
authorisation matrix (role x camera-group scope), typed errors, scoped subscriptions, slow
subscribers, audit."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import websockets
from api_helpers import (
    PASSWORD,
    USERS,
    Client,
    connect_ws,
    graphql_subscriptions,
    next_message,
    running_server,
    subscribe,
    until_subscribed,
)

from smartcity.app import Server
from smartcity.core.events import CameraHealth, CameraState, RuleEvent

ZONE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
CREATE_RULE = """
mutation($id: ID, $cam: ID!, $params: JSON!) {
  createRule(id: $id, input: {cameraId: $cam, type: "dwell", classes: ["car"], params: $params}) {
    __typename
    ... on Rule { id cameraId type version params }
    ... on ValidationError { errors { field message } }
    ... on NotAuthorized { message }
    ... on NotFoundError { message }
  }
}"""


async def test_login_rate_limited_and_audited(api: tuple[str, Server, dict[str, Client]]) -> None:
    base, server, clients = api
    anon = clients["anonymous"]
    q = "mutation { login(username: \"tech-op\", password: \"wrong password!\") { __typename ... on LoginFailed { message retryAfterS } } }"
    results = [(await anon.gql(q))["data"]["login"] for _ in range(6)]
    assert [r["message"] for r in results[:5]] == ["wrong user name or password"] * 5
    assert results[5]["message"].startswith("too many failed logins")
    assert results[5]["retryAfterS"] > 0
    # the right password is refused too while the user is locked out
    body = await anon.gql(f'mutation {{ login(username: "tech-op", password: "{PASSWORD}") {{ __typename }} }}')
    assert body["data"]["login"]["__typename"] == "LoginFailed"
    audit = (await clients["admin"].gql("{ auditLog(first: 50) { action actor } }"))["data"]["auditLog"]
    assert sum(1 for a in audit if a["action"] == "login.failed" and a["actor"] == "tech-op") == 5


async def test_queries_need_a_token_and_respect_scope(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    body = await clients["anonymous"].gql("{ cameras { id } }")
    assert body["data"] is None
    assert "not authenticated" in body["errors"][0]["message"]
    forged = Client(clients["admin"].base, clients["admin"].token[:-4] + "AAAA")  # type: ignore[index]
    body = await forged.gql("{ cameras { id } }")
    assert "invalid token signature" in body["errors"][0]["message"]
    await forged.close()
    ids = {name: [c["id"] for c in (await clients[name].gql("{ cameras { id group } }"))["data"]["cameras"]] for name in USERS}
    assert ids == {"admin": ["cam-p", "cam-t"], "police-op": ["cam-p"], "police-viewer": ["cam-p"], "tech-op": ["cam-t"]}
    assert (await clients["police-op"].gql('{ camera(id: "cam-t") { id } }'))["data"]["camera"] is None
    body = await clients["police-viewer"].gql("{ users { username } }")
    assert "admin role needed" in body["errors"][0]["message"]
    me = (await clients["police-op"].gql("{ me { username role groups } }"))["data"]["me"]
    assert me == {"username": "police-op", "role": "operator", "groups": ["police"]}


# who may create a rule on which camera: role x scope
MATRIX = [
    ("admin", "cam-p", "Rule"),
    ("admin", "cam-t", "Rule"),
    ("police-op", "cam-p", "Rule"),
    ("police-op", "cam-t", "NotFoundError"),  # outside the scope: the camera does not exist for them
    ("police-viewer", "cam-p", "NotAuthorized"),
    ("tech-op", "cam-p", "NotFoundError"),
    ("tech-op", "cam-t", "Rule"),
    ("anonymous", "cam-p", "NotAuthorized"),
]


async def test_rule_mutation_authorisation_matrix(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    for i, (user, cam, expected) in enumerate(MATRIX):
        body = await clients[user].gql(CREATE_RULE, id=f"r{i}", cam=cam, params={"zone": ZONE, "threshold_s": 30})
        assert body["data"]["createRule"]["__typename"] == expected, (user, cam, body)
    # update / pause / delete follow the same scope
    for user, expected in (("police-viewer", "NotAuthorized"), ("tech-op", "NotFoundError"), ("police-op", "Rule")):
        body = await clients[user].gql('mutation { setRuleEnabled(id: "r2", enabled: false) { __typename ... on Rule { enabled version } } }')
        assert body["data"]["setRuleEnabled"]["__typename"] == expected, (user, body)
    body = await clients["police-op"].gql('{ rules(cameraId: "cam-p") { id enabled version } }')
    assert {"id": "r2", "enabled": False, "version": 2} in body["data"]["rules"]
    assert (await clients["tech-op"].gql('{ rules(cameraId: "cam-p") { id } }'))["data"]["rules"] == []
    for user, expected in (("police-viewer", "NotAuthorized"), ("tech-op", "NotFoundError"), ("police-op", "Deleted")):
        body = await clients[user].gql('mutation { deleteRule(id: "r2") { __typename } }')
        assert body["data"]["deleteRule"]["__typename"] == expected, (user, body)


async def test_admin_only_mutations(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    cam = 'mutation { upsertCamera(input: {id: "cam-new", url: "rtsp://10.1.1.1/x", group: "police", enabled: false}) { __typename } }'
    user = 'mutation { createUser(input: {username: "new-one", password: "long enough pass", role: "viewer", groups: ["police"]}) { __typename } }'
    for name, expected in (("police-op", "NotAuthorized"), ("police-viewer", "NotAuthorized"), ("admin", None)):
        a = (await clients[name].gql(cam))["data"]["upsertCamera"]["__typename"]
        b = (await clients[name].gql(user))["data"]["createUser"]["__typename"]
        assert (a, b) == ((expected, expected) if expected else ("Camera", "User")), name
    audit = (await clients["admin"].gql("{ auditLog { action actor target after } }"))["data"]["auditLog"]
    actions = [(a["action"], a["actor"], a["target"]) for a in audit]
    assert ("camera.upsert", "admin", "camera:cam-new") in actions
    assert ("user.create", "admin", "user:new-one") in actions


async def test_invalid_inputs_get_typed_errors_naming_the_field(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    op = clients["police-op"]
    bow_tie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    body = await op.gql(CREATE_RULE, id="bad", cam="cam-p", params={"zone": bow_tie, "threshold_s": 30})
    res = body["data"]["createRule"]
    assert res["__typename"] == "ValidationError"
    assert res["errors"][0]["field"] == "params.zone"
    assert "self-intersect" in res["errors"][0]["message"]
    body = await op.gql(CREATE_RULE, id="bad2", cam="cam-p", params={"zone": ZONE, "threshold_s": -5})
    assert body["data"]["createRule"]["errors"][0]["field"] == "params.threshold_s"
    body = await op.gql(
        'mutation { createRule(input: {cameraId: "cam-p", type: "teleport", params: {}}) { __typename ... on ValidationError { errors { field message } } } }'
    )
    assert body["data"]["createRule"]["errors"][0]["field"] == "type"
    body = await clients["admin"].gql('mutation { upsertCamera(input: {id: "x y", url: "ftp://nowhere"}) { __typename ... on ValidationError { errors { field } } } }')
    assert {e["field"] for e in body["data"]["upsertCamera"]["errors"]} == {"id", "url"}
    body = await op.gql('{ events(first: 100000) { edges { cursor } } }')
    assert "first: must be between 1 and 500" in body["errors"][0]["message"]
    body = await op.gql('{ events(after: "garbage!") { edges { cursor } } }')
    assert "after: not a cursor" in body["errors"][0]["message"]
    body = await op.gql("{ " + " ".join(f"a{i}: me {{ username }}" for i in range(30)) + " }")
    assert body["errors"], "too many aliases are refused"
    # nothing was stored by the refused mutations
    assert (await op.gql('{ rules(cameraId: "cam-p") { id } }'))["data"]["rules"] == []


async def test_register_paging_filters_and_scope(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, server, clients = api
    assert server.writer is not None
    now = time.time()
    evs = [
        RuleEvent(camera_id=cam, t=now - i, rule_id="r", rule_type="dwell", kind="dwell", object_class="car")
        for i in range(7)
        for cam in ("cam-p", "cam-t")
    ]
    await server.writer.write(evs)
    op = clients["police-op"]
    seen: list[str] = []
    after = None
    while True:
        body = await op.gql(
            "query($a: String) { events(first: 3, after: $a) { edges { cursor node { id cameraId at } } pageInfo { hasNextPage endCursor } } }",
            a=after,
        )
        conn = body["data"]["events"]
        seen += [e["node"]["id"] for e in conn["edges"]]
        assert {e["node"]["cameraId"] for e in conn["edges"]} <= {"cam-p"}
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == [e.event_id for e in evs if e.camera_id == "cam-p"]
    assert len((await clients["admin"].gql("{ events(first: 100) { edges { cursor } } }"))["data"]["events"]["edges"]) == 14


async def test_subscriptions_are_scoped_and_need_a_token(api: tuple[str, Server, dict[str, Client]]) -> None:
    base, server, clients = api
    q = "subscription { cameraStatus { cameraId state seq } }"
    police = await connect_ws(base, clients["police-viewer"].token)
    admin = await connect_ws(base, clients["admin"].token)
    await subscribe(police, "1", q)
    await subscribe(admin, "1", q)
    await until_subscribed(server, 2)
    for seq, cam in enumerate(["cam-t", "cam-p", "cam-t", "cam-p"], start=1):
        await server.bus.publish(CameraHealth(camera_id=cam, t=time.time(), group="g", state=CameraState.ONLINE, seq=seq))
    got_police = [(await next_message(police))["payload"]["data"]["cameraStatus"] for _ in range(2)]
    got_admin = [(await next_message(admin))["payload"]["data"]["cameraStatus"] for _ in range(4)]
    assert [(m["cameraId"], m["seq"]) for m in got_police] == [("cam-p", 2), ("cam-p", 4)]
    assert [m["seq"] for m in got_admin] == [1, 2, 3, 4]
    await police.close()
    await admin.close()

    anonymous = await connect_ws(base, None)

    async def read_until_closed() -> None:
        for _ in range(3):
            await asyncio.wait_for(anonymous.recv(), 5)

    with pytest.raises(websockets.ConnectionClosed) as info:
        await read_until_closed()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4403


async def test_slow_subscriber_is_closed_without_slowing_others(api: tuple[str, Server, dict[str, Client]]) -> None:
    base, server, clients = api
    q = 'subscription { events(cameraId: "cam-p") { id kind payload } }'
    slow = await connect_ws(base, clients["admin"].token, rcvbuf=4096)
    fast = await connect_ws(base, clients["police-op"].token)
    await subscribe(slow, "s", q)
    await subscribe(fast, "f", q)
    await until_subscribed(server, 2)
    n = 3000
    received: list[str] = []

    async def read_fast() -> None:
        while len(received) < n:
            msg = await next_message(fast, 30)
            assert msg["type"] == "next", msg
            received.append(msg["payload"]["data"]["events"]["id"])

    reader = asyncio.create_task(read_fast())
    try:
        await _publish_steadily(server, n, received)
        await asyncio.wait_for(reader, 60)
    finally:
        reader.cancel()
    assert len(received) == n
    assert server.bus.closed_by_overflow >= 1
    # the slow one, once it reads, finds the reason after what it had been sent
    reason = None
    kinds: dict[str, int] = {}
    while reason is None:
        msg = json.loads(await asyncio.wait_for(slow.recv(), 30))
        kinds[msg["type"]] = kinds.get(msg["type"], 0) + 1
        if msg["type"] == "error":
            reason = msg["payload"][0]["message"]
        elif msg["type"] == "next" and msg["payload"].get("errors"):
            reason = msg["payload"]["errors"][0]["message"]
        assert msg["type"] in ("next", "error"), (msg, kinds)
    assert "too slow" in reason
    assert kinds["next"] < n, "the slow client was cut off before the end"
    await slow.close()
    await fast.close()


async def _publish_steadily(server: Server, n: int, received: list[str]) -> None:
    pad = "x" * 4000  # big messages fill the slow client's socket buffers sooner
    for i in range(n):
        await server.bus.publish(
            RuleEvent(camera_id="cam-p", t=time.time(), rule_id="r", rule_type="dwell", kind=f"k{i}", payload={"pad": pad})
        )
        while len(received) < i - 4:  # a steady stream the fast client keeps up with
            await asyncio.sleep(0.001)

async def test_incident_mutations_without_alerting_say_so(tmp_path: Path, storage_url: str) -> None:
    async with running_server(tmp_path, storage_url, extra={"alerts": {"enabled": False}}) as (base, _):
        c = Client(base)
        await c.login("police-op")
        body = await c.gql('mutation { acknowledgeIncident(id: "nope") { __typename ... on NotFoundError { message } } }')
        assert body["data"]["acknowledgeIncident"]["__typename"] == "NotFoundError"
        assert "not enabled" in body["data"]["acknowledgeIncident"]["message"]
        await c.close()


async def test_incident_matrix_and_scoped_incident_stream(api: tuple[str, Server, dict[str, Client]]) -> None:
    base, server, clients = api
    police_ws = await connect_ws(base, clients["police-viewer"].token)
    tech_ws = await connect_ws(base, clients["tech-op"].token)
    q = "subscription { incidents { id kind state cameraIds } }"
    await subscribe(police_ws, "i", q)
    await subscribe(tech_ws, "i", q)
    await until_subscribed(server, 2)
    for cam in ("cam-t", "cam-p"):
        await server.bus.publish(
            RuleEvent(camera_id=cam, t=time.time(), rule_id=f"park-{cam}", rule_type="dwell", kind="dwell", object_class="car", track_id=7)
        )
    got = (await next_message(police_ws, 15))["payload"]["data"]["incidents"]
    assert got["cameraIds"] == ["cam-p"]
    assert got["state"] == "open"
    got_tech = (await next_message(tech_ws, 15))["payload"]["data"]["incidents"]
    assert got_tech["cameraIds"] == ["cam-t"]
    incident = got["id"]
    await police_ws.close()
    await tech_ws.close()

    deadline = time.monotonic() + 10
    while True:  # committed by fusion
        listed = (await clients["police-op"].gql("{ incidents { edges { node { id state } } } }"))["data"]["incidents"]["edges"]
        if listed or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [e["node"]["id"] for e in listed] == [incident]
    ack = 'mutation($id: ID!) { acknowledgeIncident(id: $id, comment: "patrol sent") { __typename ... on IncidentType { state acknowledgedBy comment } } }'
    for user, expected in (("police-viewer", "NotAuthorized"), ("tech-op", "NotFoundError"), ("anonymous", "NotAuthorized")):
        assert (await clients[user].gql(ack, id=incident))["data"]["acknowledgeIncident"]["__typename"] == expected, user
    watcher = await connect_ws(base, clients["police-viewer"].token)
    subscribed = graphql_subscriptions(server)
    await subscribe(watcher, "w", "subscription { incidents { id state acknowledgedBy comment } }")
    await until_subscribed(server, subscribed + 1)
    res = (await clients["police-op"].gql(ack, id=incident))["data"]["acknowledgeIncident"]
    assert res == {"__typename": "IncidentType", "state": "acknowledged", "acknowledgedBy": "police-op", "comment": "patrol sent"}
    live = (await next_message(watcher, 15))["payload"]["data"]["incidents"]
    assert live == {"id": incident, "state": "acknowledged", "acknowledgedBy": "police-op", "comment": "patrol sent"}
    await watcher.close()
    again = (await clients["police-op"].gql(ack, id=incident))["data"]["acknowledgeIncident"]
    assert again["__typename"] == "ValidationError"  # acknowledged -> acknowledged is not a move
    by_state = "query($s: String) { incidents(state: $s) { edges { node { id } } } alertDeliveries(state: $s) { id } }"
    found = {
        st: [e["node"]["id"] for e in (await clients["police-op"].gql(by_state, s=st))["data"]["incidents"]["edges"]]
        for st in ("acknowledged", "open", "no-such-state")
    }
    assert found == {"acknowledged": [incident], "open": [], "no-such-state": []}
    assert (await clients["police-op"].gql(by_state, s="no-such-state"))["data"]["alertDeliveries"] == []


async def test_user_changes_revoke_tokens_and_groups_are_admin_only(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    upd = 'mutation { updateUser(username: "police-viewer", input: {role: "operator", groups: ["technical"]}) { __typename ... on User { role groups } } }'
    assert (await clients["police-op"].gql(upd))["data"]["updateUser"]["__typename"] == "NotAuthorized"
    res = (await clients["admin"].gql(upd))["data"]["updateUser"]
    assert res == {"__typename": "User", "role": "operator", "groups": ["technical"]}
    body = await clients["police-viewer"].gql("{ cameras { id } }")
    assert "token revoked" in body["errors"][0]["message"]
    await clients["police-viewer"].login("police-viewer")
    assert [c["id"] for c in (await clients["police-viewer"].gql("{ cameras { id } }"))["data"]["cameras"]] == ["cam-t"]
    grp = 'mutation { upsertCameraGroup(name: "parks", description: "Parks and gardens") { __typename } }'
    assert (await clients["tech-op"].gql(grp))["data"]["upsertCameraGroup"]["__typename"] == "NotAuthorized"
    assert (await clients["admin"].gql(grp))["data"]["upsertCameraGroup"]["__typename"] == "CameraGroup"
    names = [g["name"] for g in (await clients["admin"].gql("{ cameraGroups { name } }"))["data"]["cameraGroups"]]
    assert names == ["parks", "police", "technical"]
