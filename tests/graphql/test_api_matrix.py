"""The authorisation matrix over real HTTP and WebSocket (uvicorn), on SQLite and PostgreSQL:
every mutation and every subscription against each role and camera-group scope; plus the
request limits, paging with ties, disabled accounts and audit before/after."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from api_helpers import USERS, Api, connect_ws, next_message, subscribe

from smartcity.core.events import (
    CameraHealth,
    CameraState,
    ConsoleAlert,
    CountBucket,
    Event,
    Incident,
    IncidentState,
    RuleEvent,
    Severity,
)

ZONE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
RED_LIGHT = {"stop_line": [[0.1, 0.5], [0.9, 0.5]], "direction": [0, 1], "signal": {"source": "external"}}
NAMES = [*USERS, "anonymous"]
def _typename(body: dict[str, Any], field: str) -> str:
    assert body.get("data"), body
    name: str = body["data"][field]["__typename"]
    return name


RULE_INPUT = "{cameraId: $cam, type: \"red_light\", classes: [\"car\"], params: $params}"
# (mutation field, document, variables) -> expected __typename per user
OPERATOR_ON_P = {"admin": "ok", "police-op": "ok", "police-viewer": "NotAuthorized", "tech-op": "NotFoundError", "anonymous": "NotAuthorized"}
ADMIN_ONLY = {"admin": "ok", "police-op": "NotAuthorized", "police-viewer": "NotAuthorized", "tech-op": "NotAuthorized", "anonymous": "NotAuthorized"}
MUTATIONS: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
    (
        "updateRule",
        f"mutation($cam: ID!, $params: JSON!) {{ updateRule(id: \"sig-p\", input: {RULE_INPUT}) {{ __typename }} }}",
        {"cam": "cam-p", "params": RED_LIGHT},
        OPERATOR_ON_P,
        "Rule",
    ),
    (
        "setRuleEnabled",
        'mutation { setRuleEnabled(id: "sig-p", enabled: true) { __typename } }',
        {},
        OPERATOR_ON_P,
        "Rule",
    ),
    (
        "pushSignalState",
        'mutation { pushSignalState(ruleId: "sig-p", state: "red") { __typename ... on SignalAccepted { applied } } }',
        {},
        OPERATOR_ON_P,
        "SignalAccepted",
    ),
    (
        "upsertCamera",
        'mutation { upsertCamera(input: {id: "cam-p", url: "rtsp://10.9.9.9/p2", group: "police", enabled: false}) { __typename } }',
        {},
        ADMIN_ONLY,
        "Camera",
    ),
    (
        "upsertCameraGroup",
        'mutation { upsertCameraGroup(name: "parks", description: "Parks") { __typename } }',
        {},
        ADMIN_ONLY,
        "CameraGroup",
    ),
    (
        "createUser",
        'mutation($u: String!) { createUser(input: {username: $u, password: "long enough pass", role: "viewer"}) { __typename } }',
        {"u": "x"},
        ADMIN_ONLY,
        "User",
    ),
    (
        "updateUser",
        'mutation { updateUser(username: "new-admin", input: {role: "operator", groups: ["technical"]}) { __typename } }',
        {},
        ADMIN_ONLY,
        "User",
    ),
    (
        "startLiveView",
        'mutation { startLiveView(cameraId: "cam-p", offerSdp: "v=0") { __typename ... on NotFoundError { message } } }',
        {},
        # no Ray in this server: every authenticated caller is told live views are unavailable
        {"admin": "NotFoundError", "police-op": "NotFoundError", "police-viewer": "NotFoundError", "tech-op": "NotFoundError", "anonymous": "NotAuthorized"},
        "",
    ),
    (
        "deleteRule",
        'mutation { deleteRule(id: "sig-p") { __typename } }',
        {},
        # admin deletes it first: the others then find nothing (or are refused before looking)
        {"admin": "ok", "police-op": "NotFoundError", "police-viewer": "NotAuthorized", "tech-op": "NotFoundError", "anonymous": "NotAuthorized"},
        "Deleted",
    ),
]


async def test_every_mutation_against_every_role_and_scope(api: Api) -> None:
    _, _, clients = api
    create = f"mutation($id: ID, $cam: ID!, $params: JSON!) {{ createRule(id: $id, input: {RULE_INPUT}) {{ __typename }} }}"
    for rid, cam in (("sig-p", "cam-p"), ("sig-t", "cam-t")):
        assert _typename(await clients["admin"].gql(create, id=rid, cam=cam, params=RED_LIGHT), "createRule") == "Rule"
    seen: dict[tuple[str, str], str] = {}
    expected: dict[tuple[str, str], str] = {}
    for field, doc, variables, matrix, ok in MUTATIONS:
        for user in NAMES:
            vs = dict(variables)
            if field == "createUser":
                vs["u"] = f"new-{user}"
            body = await clients[user].gql(doc, **vs)
            seen[(field, user)] = _typename(body, field)
            expected[(field, user)] = ok if matrix[user] == "ok" else matrix[user]
            if field == "pushSignalState" and seen[(field, user)] == "SignalAccepted":
                assert body["data"][field]["applied"] is False  # no camera actor runs here
    assert seen == expected
    # the tech operator still runs their own camera's rule; the police operator cannot see it
    tech = 'mutation { pushSignalState(ruleId: "sig-t", state: "green") { __typename } }'
    assert _typename(await clients["tech-op"].gql(tech), "pushSignalState") == "SignalAccepted"
    assert _typename(await clients["police-op"].gql(tech), "pushSignalState") == "NotFoundError"
    # every accepted mutation is in the audit log, by its author
    audit = (await clients["admin"].gql("{ auditLog(first: 200) { actor action target } }"))["data"]["auditLog"]
    done = {(a["actor"], a["action"], a["target"]) for a in audit}
    assert {
        ("admin", "rule.update", "rule:sig-p"),
        ("police-op", "rule.update", "rule:sig-p"),
        ("police-op", "signal.push", "rule:sig-p"),
        ("tech-op", "signal.push", "rule:sig-t"),
        ("admin", "camera.upsert", "camera:cam-p"),
        ("admin", "group.upsert", "group:parks"),
        ("admin", "user.create", "user:new-admin"),
        ("admin", "user.update", "user:new-admin"),
        ("admin", "rule.delete", "rule:sig-p"),
    } <= done
    assert not any(a[0] in ("police-viewer", "anonymous") and a[1] not in ("login", "login.failed") for a in done)


def _scoped_events(n: int) -> list[Event]:
    """One event of every streamed type for cam-t then cam-p, `n` rounds."""
    out: list[Event] = []
    now = time.time()
    for i in range(n):
        for cam in ("cam-t", "cam-p"):
            out += [
                RuleEvent(camera_id=cam, t=now, rule_id=f"r-{cam}", rule_type="dwell", kind=f"k{i}", object_class="car"),
                CameraHealth(camera_id=cam, t=now, group="g", state=CameraState.ONLINE, seq=i),
                CountBucket(camera_id=cam, t=now, rule_id=f"l-{cam}", object_class="car", direction="in", bucket_start=60.0 * i, bucket_s=60, n=i),
                Incident(camera_id=cam, t=now, incident_id=f"i-{cam}-{i}", rule_id=None, kind="dwell", severity=Severity.LOW, camera_ids=(cam,)),
                ConsoleAlert(camera_id=cam, t=now, incident_id=f"i-{cam}-{i}", kind="dwell", severity=Severity.LOW, camera_ids=(cam,)),
            ]
    return out


SUBSCRIPTIONS = {
    "events": "subscription { events { cameraId kind } }",
    "cameraStatus": "subscription { cameraStatus { cameraId seq } }",
    "countBuckets": "subscription { countBuckets { cameraId n part } }",
    "incidents": "subscription { incidents { cameraIds id } }",
    "alerts": "subscription { alerts { cameraIds incidentId } }",
}
SCOPE = {"admin": {"cam-t", "cam-p"}, "police-op": {"cam-p"}, "police-viewer": {"cam-p"}, "tech-op": {"cam-t"}}


def _camera(field: str, data: dict[str, Any]) -> str:
    return str(data["cameraId"]) if "cameraId" in data else str(data["cameraIds"][0])


async def test_every_subscription_against_every_role_and_scope(api: Api) -> None:
    base, server, clients = api
    sockets: dict[tuple[str, str], Any] = {}
    for user in USERS:
        for field, q in SUBSCRIPTIONS.items():
            ws = await connect_ws(base, clients[user].token)
            await subscribe(ws, field, q)
            sockets[(user, field)] = ws
    await asyncio.sleep(0.3)
    rounds = 2
    for e in _scoped_events(rounds):
        await server.bus.publish(e)
    await asyncio.sleep(0.3)  # anything sent out of scope would have arrived by now
    try:
        for (user, field), ws in sockets.items():
            want = [c for _ in range(rounds) for c in ("cam-t", "cam-p") if c in SCOPE[user]]
            ours: list[str] = []
            others: list[str] = []  # fusion also opens incidents (and alerts) from the rule events
            while True:
                try:
                    msg = await next_message(ws, 5 if len(ours) < len(want) else 0.05)
                except TimeoutError:
                    break
                assert msg["type"] == "next", (user, field, msg)
                data = msg["payload"]["data"][field]
                ident = str(data.get("id") or data.get("incidentId") or "")
                (others if field in ("incidents", "alerts") and not ident.startswith("i-") else ours).append(_camera(field, data))
            assert ours == want, (user, field)
            assert set(others) <= SCOPE[user], (user, field, others)
    finally:
        for ws in sockets.values():
            await ws.close()
    # no token, or a token for a disabled account: the connection is refused
    upd = 'mutation { updateUser(username: "tech-op", input: {disabled: true}) { __typename ... on User { disabled } } }'
    assert (await clients["admin"].gql(upd))["data"]["updateUser"] == {"__typename": "User", "disabled": True}
    for token in (None, clients["tech-op"].token):
        ws = await connect_ws(base, token)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await _read_three(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4403
    body = await clients["tech-op"].gql("{ cameras { id } }")
    assert body["data"] is None and "not authenticated" in body["errors"][0]["message"]
    relogin = await clients["tech-op"].gql('mutation { login(username: "tech-op", password: "correct horse battery") { __typename } }')
    assert relogin["data"]["login"]["__typename"] == "LoginFailed"


async def _read_three(ws: Any) -> None:
    for _ in range(3):
        await asyncio.wait_for(ws.recv(), 5)


async def test_role_change_applies_at_once_and_admins_cannot_lock_themselves_out(api: Api) -> None:
    _, _, clients = api
    for body in (
        'mutation { updateUser(username: "admin", input: {role: "viewer"}) { __typename ... on ValidationError { errors { field } } } }',
        'mutation { updateUser(username: "admin", input: {disabled: true}) { __typename ... on ValidationError { errors { field } } } }',
    ):
        res = (await clients["admin"].gql(body))["data"]["updateUser"]
        assert res["__typename"] == "ValidationError"
        assert res["errors"][0]["field"] in ("role", "disabled")
    assert (await clients["admin"].gql("{ me { role } }"))["data"]["me"]["role"] == "admin"
    bad = 'mutation { updateUser(username: "police-op", input: {role: "superuser", groups: ["nowhere"]}) { __typename ... on ValidationError { errors { field } } } }'
    assert (await clients["admin"].gql(bad))["data"]["updateUser"]["errors"][0]["field"] == "role"
    demote = 'mutation { updateUser(username: "police-op", input: {role: "viewer"}) { __typename } }'
    assert _typename(await clients["admin"].gql(demote), "updateUser") == "User"
    await clients["police-op"].login("police-op")
    create = 'mutation { createRule(input: {cameraId: "cam-p", type: "dwell", params: {zone: [[0,0],[1,0],[1,1]], threshold_s: 5}}) { __typename } }'
    assert _typename(await clients["police-op"].gql(create), "createRule") == "NotAuthorized"


async def test_invalid_rule_inputs_name_the_field(api: Api) -> None:
    _, _, clients = api
    op = clients["police-op"]
    doc = 'mutation($s: JSON, $p: JSON!) { createRule(input: {cameraId: "cam-p", type: "dwell", schedule: $s, params: $p}) { __typename ... on ValidationError { errors { field message } } } }'
    cases = [
        ({"kind": "sometimes"}, {"zone": ZONE, "threshold_s": 5}, "schedule"),
        ("every day", {"zone": ZONE, "threshold_s": 5}, "schedule"),
        (None, [1, 2, 3], "params"),
        (None, {"zone": [[0.1, 0.1], [2.0, 0.1], [0.5, 0.9]], "threshold_s": 5}, "params.zone"),
        (None, {"zone": ZONE, "threshold_s": 5, "colour": "red"}, "params.colour"),
    ]
    for schedule, params, field in cases:
        res = (await op.gql(doc, s=schedule, p=params))["data"]["createRule"]
        assert res["__typename"] == "ValidationError", (schedule, params, res)
        assert any(e["field"].startswith(field) for e in res["errors"]), (field, res)
    assert (await op.gql("{ rules { id } }"))["data"]["rules"] == []


async def test_cost_limit_refuses_huge_requests_but_not_normal_ones(api: Api) -> None:
    _, _, clients = api
    page = "events(first: $n) { edges { cursor node { id cameraId ruleId kind objectClass at payload } } pageInfo { endCursor } }"
    big = "query($n: Int!) { " + " ".join(f"a{i}: {page}" for i in range(4)) + " }"
    body = await clients["admin"].gql(big, n=500)
    assert body["data"] is None and "too complex" in body["errors"][0]["message"]
    body = await clients["admin"].gql(big, n=50)  # the same document with small pages is fine
    assert "errors" not in body and len(body["data"]) == 4
    frag = "fragment F on RuleEventConnection { edges { node { id at payload kind } } } query { " + " ".join(
        f"a{i}: events(first: 500) {{ ...F }}" for i in range(4)
    ) + " }"
    assert "too complex" in (await clients["admin"].gql(frag))["errors"][0]["message"]


async def test_incident_pages_keep_ties_and_scope(api: Api) -> None:
    _, server, clients = api
    assert server.writer is not None
    t = time.time()
    incidents = [
        Incident(
            camera_id=cam, t=t, incident_id=f"inc-{cam}-{i:02d}", rule_id="r", kind="dwell", severity=Severity.LOW,
            state=IncidentState.OPEN, camera_ids=(cam,), first_seen=t - 10, last_seen=t - (i // 3),  # three per timestamp
        )
        for i in range(8)
        for cam in ("cam-p", "cam-t")
    ]
    await server.writer.write(incidents)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await clients["police-viewer"].gql(
            "query($a: String) { incidents(first: 2, after: $a, kind: \"dwell\") { edges { node { id cameraIds } } pageInfo { hasNextPage endCursor } } }",
            a=after,
        )
        conn = body["data"]["incidents"]
        seen += [e["node"]["id"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    # newest first, ties broken by id (descending): none skipped, none repeated
    want = [iid for _, iid in sorted(((t - (i // 3), f"inc-cam-p-{i:02d}") for i in range(8)), reverse=True)]
    assert seen == want
    assert pages == 4
    one = await clients["tech-op"].gql('{ incidents(cameraId: "cam-p") { edges { node { id } } } }')
    assert one["data"]["incidents"]["edges"] == []


async def test_audit_entries_carry_before_and_after(api: Api) -> None:
    _, _, clients = api
    op = clients["police-op"]
    doc = 'mutation($p: JSON!) { %s(id: "d1", input: {cameraId: "cam-p", type: "dwell", params: $p}) { __typename } }'
    assert _typename(await op.gql(doc % "createRule", p={"zone": ZONE, "threshold_s": 30}), "createRule") == "Rule"
    assert _typename(await op.gql(doc % "updateRule", p={"zone": ZONE, "threshold_s": 60}), "updateRule") == "Rule"
    entries = (await clients["admin"].gql('{ auditLog(target: "rule:d1") { actor action before after at } }'))["data"]["auditLog"]
    assert [e["action"] for e in entries] == ["rule.update", "rule.create"]
    update, create = entries
    assert create["before"] is None and create["after"]["params"]["threshold_s"] == 30
    assert update["before"]["params"]["threshold_s"] == 30 and update["after"]["params"]["threshold_s"] == 60
    assert {e["actor"] for e in entries} == {"police-op"}
    prefix = (await clients["admin"].gql('{ auditLog(action: "rule.") { action } }'))["data"]["auditLog"]
    assert [e["action"] for e in prefix] == ["rule.update", "rule.create"]
    # and the rule carries its geometry for drawing
    rule = (await op.gql('{ rule(id: "d1") { geometry schedule version } }'))["data"]["rule"]
    assert rule["geometry"] == [ZONE]
    assert rule["schedule"]["kind"] == "permanent"
    assert rule["version"] == 2


async def test_incidents_link_their_first_evidence_snapshot(api: Api, tmp_path: Path) -> None:
    _, server, clients = api
    assert server.writer is not None
    t = time.time()
    snap = tmp_path / "snap.jpg"
    snap.write_bytes(b"\xff\xd8\xff\xd9")
    plain = RuleEvent(camera_id="cam-p", t=t - 5, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    shot = RuleEvent(camera_id="cam-p", t=t - 4, rule_id="r", rule_type="dwell", kind="dwell_exceeded", evidence_path=str(snap))
    common = {"t": t, "rule_id": "r", "kind": "dwell_exceeded", "severity": Severity.LOW, "state": IncidentState.OPEN,
              "camera_ids": ("cam-p",), "first_seen": t - 5}
    await server.writer.write([
        plain,
        shot,
        Incident(camera_id="cam-p", incident_id="inc-ev", last_seen=t - 1, event_ids=(plain.event_id, shot.event_id), **common),
        Incident(camera_id="cam-p", incident_id="inc-no", last_seen=t - 2, event_ids=(plain.event_id,), **common),
    ])
    body = await clients["police-viewer"].gql('{ incidents(kind: "dwell_exceeded") { edges { node { id evidenceUrl } } } }')
    urls = {e["node"]["id"]: e["node"]["evidenceUrl"] for e in body["data"]["incidents"]["edges"]}
    assert urls["inc-no"] is None
    assert urlsplit(urls["inc-ev"]).path == f"/evidence/{shot.event_id}.jpg"  # ?token=: its picture token
    # one incident by id (what an SMS or a webhook names): in scope, out of scope, unknown
    one = 'query($id: ID!) { incident(id: $id) { id count cameraIds evidenceUrl } }'
    got = (await clients["police-viewer"].gql(one, id="inc-ev"))["data"]["incident"]
    assert urlsplit(got.pop("evidenceUrl")).path == f"/evidence/{shot.event_id}.jpg"
    assert got == {"id": "inc-ev", "count": 1, "cameraIds": ["cam-p"]}
    assert (await clients["tech-op"].gql(one, id="inc-ev"))["data"]["incident"] is None
    assert (await clients["police-viewer"].gql(one, id="nope"))["data"]["incident"] is None
