"""What a user outside a camera group must not see or do: open subscriptions after the account
is disabled or re-scoped, the other group's half of an incident, the other group's rule ids."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from api_helpers import Api, Client, connect_ws, next_message, running_server, subscribe, until_subscribed

from smartcity.core.events import (
    CameraHealth,
    CameraState,
    ConsoleAlert,
    Incident,
    IncidentState,
    RuleEvent,
    Severity,
)

RULE = (
    "mutation($id: ID, $cam: ID!) { createRule(id: $id, input: {cameraId: $cam, type: \"dwell\", "
    "params: {zone: [[0,0],[1,0],[1,1]], threshold_s: 5}}) { __typename ... on Rule { id cameraId } "
    "... on ValidationError { errors { field message } } ... on NotFoundError { message } } }"
)


async def _reason_of_end(ws: Any) -> str:
    """Read until the server ends the subscription; its reason."""
    while True:
        msg = await next_message(ws, 15)
        if msg["type"] == "complete":  # of a subscription that ended before
            continue
        if msg["type"] == "error":
            return str(msg["payload"][0]["message"])
        if msg["type"] == "next" and msg["payload"].get("errors"):
            return str(msg["payload"]["errors"][0]["message"])
        assert msg["type"] == "next", msg


async def test_open_subscriptions_end_when_the_session_is_revoked(tmp_path: Path, storage_url: str) -> None:
    async with running_server(tmp_path, storage_url, extra={"server": {"session_check_s": 0.2}}) as (base, server):
        clients = {name: Client(base) for name in ("admin", "tech-op", "police-op", "police-viewer")}
        sockets = []
        try:
            for name, c in clients.items():
                await c.login(name)
            q = "subscription { cameraStatus { cameraId seq } }"
            for name in ("tech-op", "police-op", "police-viewer"):
                ws = await connect_ws(base, clients[name].token)
                await subscribe(ws, "1", q)
                sockets.append(ws)
            tech_ws, police_ws, viewer_ws = sockets
            idle = await connect_ws(base, clients["tech-op"].token)  # a connection with no subscription
            sockets.append(idle)
            assert json.loads(await idle.recv())["type"] == "connection_ack"
            await asyncio.sleep(0.5)
            for cam in ("cam-t", "cam-p"):
                await server.bus.publish(CameraHealth(camera_id=cam, t=time.time(), group="g", state=CameraState.ONLINE, seq=1))
            assert (await next_message(tech_ws))["payload"]["data"]["cameraStatus"]["cameraId"] == "cam-t"
            assert (await next_message(police_ws))["payload"]["data"]["cameraStatus"]["cameraId"] == "cam-p"
            assert (await next_message(viewer_ws))["payload"]["data"]["cameraStatus"]["cameraId"] == "cam-p"
            admin = clients["admin"]
            disable = 'mutation { updateUser(username: "tech-op", input: {disabled: true}) { __typename } }'
            rescope = 'mutation { updateUser(username: "police-op", input: {groups: ["technical"]}) { __typename } }'
            assert (await admin.gql(disable))["data"]["updateUser"]["__typename"] == "User"
            assert (await admin.gql(rescope))["data"]["updateUser"]["__typename"] == "User"
            # its next operation reads the user again, whenever it comes
            await idle.send(json.dumps({"id": "q", "type": "subscribe", "payload": {"query": "{ cameras { id } }"}}))
            assert "not authenticated: session revoked: account disabled" in await _reason_of_end(idle)
            assert "session revoked: account disabled" in await _reason_of_end(tech_ws)
            assert "session revoked" in await _reason_of_end(police_ws)
            # the connection is no longer authenticated: a new operation on it is refused
            await police_ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": q}}))
            assert "not authenticated: session revoked" in await _reason_of_end(police_ws)
            await police_ws.send(json.dumps({"id": "3", "type": "subscribe", "payload": {"query": "{ cameras { id } }"}}))
            assert "not authenticated: session revoked" in await _reason_of_end(police_ws)
            # an unchanged user keeps streaming
            await server.bus.publish(CameraHealth(camera_id="cam-p", t=time.time(), group="g", state=CameraState.ONLINE, seq=2))
            assert (await next_message(viewer_ws))["payload"]["data"]["cameraStatus"] == {"cameraId": "cam-p", "seq": 2}
        finally:
            for ws in sockets:
                await ws.close()
            for c in clients.values():
                await c.close()


async def _spanning_incident(api: Api) -> tuple[str, RuleEvent, RuleEvent]:
    """An incident over cam-p (police) and cam-t (technical), opened by a technical rule."""
    _, server, clients = api
    assert server.writer is not None
    made = (await clients["tech-op"].gql(RULE, id="park-t", cam="cam-t"))["data"]["createRule"]
    assert made == {"__typename": "Rule", "id": "park-t", "cameraId": "cam-t"}
    t = time.time()
    ev_p = RuleEvent(camera_id="cam-p", t=t - 3, rule_id="park-p", rule_type="dwell", kind="dwell_exceeded")
    ev_t = RuleEvent(camera_id="cam-t", t=t - 2, rule_id="park-t", rule_type="dwell", kind="dwell_exceeded")
    incident = Incident(
        camera_id="cam-t", t=t, incident_id="inc-both", rule_id="park-t", kind="dwell_exceeded", severity=Severity.HIGH,
        state=IncidentState.OPEN, camera_ids=("cam-t", "cam-p"), first_seen=t - 3, last_seen=t - 2, count=2,
        event_ids=(ev_t.event_id, ev_p.event_id),
    )
    await server.writer.write([ev_p, ev_t, incident])
    return incident.incident_id, ev_p, ev_t


async def test_a_scoped_user_sees_only_their_part_of_an_incident(api: Api) -> None:
    base, server, clients = api
    watcher = await connect_ws(base, clients["police-viewer"].token)
    await subscribe(watcher, "i", "subscription { incidents { id cameraIds eventIds ruleId count } }")
    alerts = await connect_ws(base, clients["police-viewer"].token)
    await subscribe(alerts, "a", "subscription { alerts { incidentId cameraIds } }")
    await until_subscribed(server, 2)
    try:
        iid, ev_p, ev_t = await _spanning_incident(api)
        part = {"id": iid, "cameraIds": ["cam-p"], "eventIds": [ev_p.event_id], "ruleId": None, "count": 1}
        fields = "id cameraIds eventIds ruleId count"
        listed = (await clients["police-viewer"].gql(f"{{ incidents {{ edges {{ node {{ {fields} }} }} }} }}"))["data"]["incidents"]
        assert [e["node"] for e in listed["edges"]] == [part]
        one = await clients["police-op"].gql(f"query($id: ID!) {{ incident(id: $id) {{ {fields} }} }}", id=iid)
        assert one["data"]["incident"] == part
        whole = (await clients["admin"].gql(f"query($id: ID!) {{ incident(id: $id) {{ {fields} }} }}", id=iid))["data"]["incident"]
        assert whole == {"id": iid, "cameraIds": ["cam-t", "cam-p"], "eventIds": [ev_t.event_id, ev_p.event_id], "ruleId": "park-t", "count": 2}
        # live, the same filter
        t = time.time()
        live = Incident(
            camera_id="cam-t", t=t, incident_id=iid, rule_id="park-t", kind="dwell_exceeded", severity=Severity.HIGH,
            camera_ids=("cam-t", "cam-p"), first_seen=t - 3, last_seen=t, count=2, event_ids=(ev_t.event_id, ev_p.event_id),
        )
        await server.bus.publish(live)
        await server.bus.publish(
            ConsoleAlert(camera_id="cam-t", t=t, incident_id=iid, kind="dwell_exceeded", severity=Severity.HIGH, camera_ids=("cam-t", "cam-p"))
        )
        got = (await next_message(watcher, 15))["payload"]["data"]["incidents"]
        assert got == part
        alert = (await next_message(alerts, 15))["payload"]["data"]["alerts"]
        assert alert == {"incidentId": iid, "cameraIds": ["cam-p"]}
    finally:
        await watcher.close()
        await alerts.close()


async def test_only_who_sees_all_of_an_incident_may_move_it(api: Api) -> None:
    _, _, clients = api
    iid, _, _ = await _spanning_incident(api)
    ack = 'mutation($id: ID!) { acknowledgeIncident(id: $id) { __typename ... on IncidentType { state } ... on NotAuthorized { message } } }'
    for user in ("police-op", "tech-op"):
        res = (await clients[user].gql(ack, id=iid))["data"]["acknowledgeIncident"]
        assert res["__typename"] == "NotAuthorized" and "not in your scope" in res["message"], (user, res)
    assert (await clients["admin"].gql(ack, id=iid))["data"]["acknowledgeIncident"] == {"__typename": "IncidentType", "state": "acknowledged"}


async def test_rule_ids_of_another_group_do_not_show(api: Api) -> None:
    _, _, clients = api
    tech, police = clients["tech-op"], clients["police-op"]
    assert (await tech.gql(RULE, id="secret-t", cam="cam-t"))["data"]["createRule"]["__typename"] == "Rule"
    assert (await police.gql(RULE, id="own-p", cam="cam-p"))["data"]["createRule"]["__typename"] == "Rule"
    # taking another group's id answers exactly as taking one's own: nothing says it exists there
    theirs = (await police.gql(RULE, id="secret-t", cam="cam-p"))["data"]["createRule"]
    ours = (await police.gql(RULE, id="own-p", cam="cam-p"))["data"]["createRule"]
    assert theirs == ours and theirs["__typename"] == "ValidationError"
    assert "exist" not in json.dumps(theirs)
    # update, delete, read: the other group's rule answers as an unknown id
    update = 'mutation($id: ID!) { updateRule(id: $id, input: {cameraId: "cam-p", type: "dwell", params: {zone: [[0,0],[1,0],[1,1]], threshold_s: 9}}) { __typename ... on NotFoundError { message } } }'
    delete = 'mutation($id: ID!) { deleteRule(id: $id) { __typename ... on NotFoundError { message } } }'
    read = 'query($id: ID!) { rule(id: $id) { id } }'
    for doc, field in ((update, "updateRule"), (delete, "deleteRule"), (read, "rule")):
        hidden = (await police.gql(doc, id="secret-t"))["data"][field]
        unknown = (await police.gql(doc, id="no-such-rule"))["data"][field]
        assert json.dumps(hidden).replace("secret-t", "X") == json.dumps(unknown).replace("no-such-rule", "X"), field
    kept = (await tech.gql('{ rule(id: "secret-t") { cameraId params } }'))["data"]["rule"]
    assert kept["cameraId"] == "cam-t" and kept["params"]["threshold_s"] == 5
