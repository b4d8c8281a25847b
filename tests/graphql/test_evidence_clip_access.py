"""An incident's evidence clip over real HTTP (uvicorn): the same access rule as the evidence
pictures (picture token bound to the clip, camera-group scope), every viewing audited once
(not each range request of the player), and no clip URL while no clip is recorded."""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import urlsplit

from api_helpers import Api

from smartcity.core.events import Incident, IncidentState, RuleEvent, Severity
from smartcity.storage.audit_repo import AuditRepo

CLIP = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8
QUERY = 'query($id: ID!) { incident(id: $id) { id evidenceUrl evidenceClipUrl } }'


async def _fall_incident(api: Api, camera_id: str, *, with_clip: bool) -> tuple[str, str]:
    """An incident of `camera_id` whose fall event has a still (and a clip next to it)."""
    _, server, _ = api
    assert server.writer is not None
    root = server.settings.storage.data_dir / "evidence"
    root.mkdir(parents=True, exist_ok=True)
    ev = RuleEvent(camera_id=camera_id, t=time.time(), rule_id="f", rule_type="fall", kind="fall",
                   severity=Severity.CRITICAL)
    still = root / f"{ev.event_id}.jpg"
    still.write_bytes(b"\xff\xd8\xff\xd9")
    if with_clip:
        still.with_suffix(".webm").write_bytes(CLIP)
    inc = Incident(camera_id=camera_id, t=ev.t, incident_id=f"inc-{ev.event_id}", rule_id="f", kind="fall",
                   severity=Severity.CRITICAL, state=IncidentState.OPEN, camera_ids=(camera_id,),
                   first_seen=ev.t, last_seen=ev.t, count=1, event_ids=(ev.event_id,))
    await server.writer.write([dataclasses.replace(ev, evidence_path=str(still)), inc])
    return inc.incident_id, ev.event_id


async def test_clip_of_an_incident_is_served_to_its_group_each_viewing_audited(api: Api) -> None:
    _, server, clients = api
    assert server.db is not None
    incident_id, event_id = await _fall_incident(api, "cam-p", with_clip=True)
    op = clients["police-op"]
    inc = (await op.gql(QUERY, id=incident_id))["data"]["incident"]
    url = inc["evidenceClipUrl"]
    assert urlsplit(url).path == f"/evidence/{event_id}.webm" and inc["evidenceUrl"]
    got = await op.http.get(url)  # the picture token in the URL, as a <video> element sends it
    assert got.status_code == 200 and got.content == CLIP and got.headers["content-type"] == "video/webm"
    part = await op.http.get(url, headers={"range": "bytes=100-199"})  # the player seeking on
    assert part.status_code == 206 and part.content == CLIP[100:200]
    audit = await AuditRepo(server.db).page(action="evidence.clip_viewed")
    assert [(r.actor, r.target) for r in audit] == [("police-op", f"event:{event_id}")]

    path = f"/evidence/{event_id}.webm"
    assert (await clients["anonymous"].http.get(path)).status_code == 401
    assert (await op.http.get(f"{path}?token=forged")).status_code == 401
    still_token = (inc["evidenceUrl"].split("token=", 1)[1])
    assert (await op.http.get(f"{path}?token={still_token}")).status_code == 401  # bound to the still
    other = clients["tech-op"]  # an operator of another camera group
    assert (await other.http.get(path, headers={"authorization": f"Bearer {other.token}"})).status_code == 404
    assert (await other.gql(QUERY, id=incident_id))["data"]["incident"] is None
    assert len(await AuditRepo(server.db).page(action="evidence.clip_viewed")) == 1


    # an incident whose clip is not recorded yet: its still only
    incident_id, event_id = await _fall_incident(api, "cam-p", with_clip=False)
    inc = (await op.gql(QUERY, id=incident_id))["data"]["incident"]
    assert inc["evidenceUrl"] and inc["evidenceClipUrl"] is None
    r = await op.http.get(f"/evidence/{event_id}.webm", headers={"authorization": f"Bearer {op.token}"})
    assert r.status_code == 404
