"""Camera URLs through the API: the cameras policy refuses files outside the data folder (links
followed), special networks and names resolving to them; viewers and the audit log never see a
camera's password or secret query parameters."""

from __future__ import annotations

import os
from pathlib import Path

from api_helpers import Client

from smartcity.app import Server

UPSERT = """
mutation($id: ID!, $url: String!) {
  upsertCamera(input: {id: $id, url: $url, group: "police", enabled: false}) {
    __typename
    ... on Camera { url }
    ... on ValidationError { errors { field message } }
  }
}"""


async def test_camera_urls_outside_the_policy_are_refused(api: tuple[str, Server, dict[str, Client]], tmp_path: Path) -> None:
    _, server, clients = api
    admin = clients["admin"]
    data = server.settings.storage.data_dir
    (data / "clips").mkdir()
    (data / "clips" / "a.mp4").write_bytes(b"")
    os.symlink("/etc/passwd", data / "clips" / "sneaky.mp4")
    refused = {
        "file:///etc/passwd": "outside the allowed folders",
        f"file://{data}/clips/../../../../etc/passwd": "outside the allowed folders",
        f"file://{data}/clips/sneaky.mp4": "outside the allowed folders",  # a link out of the folder
        "http://169.254.169.254/latest/meta-data/iam": "169.254.169.254 is not allowed",
        "http://[fe80::1]/": "fe80::1 is not allowed",
    }
    for i, (url, because) in enumerate(refused.items()):
        res = (await admin.gql(UPSERT, id=f"bad-{i}", url=url))["data"]["upsertCamera"]
        assert res["__typename"] == "ValidationError", (url, res)
        assert res["errors"][0]["field"] == "url"
        assert because in res["errors"][0]["message"], (url, res)
    for i, url in enumerate([f"file://{data}/clips/a.mp4", "rtsp://127.0.0.1:8554/relay", "rtsp://10.20.0.7/s", "demo://vtest"]):
        res = (await admin.gql(UPSERT, id=f"ok-{i}", url=url))["data"]["upsertCamera"]
        assert res["__typename"] == "Camera", (url, res)
    ids = {c["id"] for c in (await admin.gql("{ cameras { id } }"))["data"]["cameras"]}
    assert not any(i.startswith("bad-") for i in ids)


async def test_viewers_and_the_audit_never_see_camera_credentials(api: tuple[str, Server, dict[str, Client]]) -> None:
    _, _, clients = api
    url = "rtsp://admin:p@ss/w0rd@10.20.0.7:554/live?channel=1&token=abc123"
    res = (await clients["admin"].gql(UPSERT, id="cam-p", url=url))["data"]["upsertCamera"]
    assert res == {"__typename": "Camera", "url": "rtsp://admin:***@10.20.0.7:554/live?channel=1&token=***"}
    seen = (await clients["police-viewer"].gql("{ cameras { id url } }"))["data"]["cameras"]
    assert {"id": "cam-p", "url": "rtsp://admin:***@10.20.0.7:554/live?channel=1&token=***"} in seen
    audit = str(await clients["admin"].gql("{ auditLog(first: 50) { action before after } }"))
    assert "camera.upsert" in audit
    for secret in ("p@ss", "w0rd", "abc123"):
        assert secret not in str(seen) and secret not in audit
