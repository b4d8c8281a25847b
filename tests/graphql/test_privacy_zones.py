"""Privacy zones over the API: only admins set them, every change is audited with before and
after, bad polygons get a typed error naming the problem, and the camera carries them to the
video side (its actor spec) without a restart."""

from __future__ import annotations

from api_helpers import Api

from smartcity.actors.camera_group import CameraSpec

WINDOW = [[0.7, 0.1], [0.95, 0.1], [0.95, 0.4], [0.7, 0.4]]
SET = """
mutation($cam: ID!, $zones: JSON!, $mode: String) {
  setCameraPrivacy(cameraId: $cam, zones: $zones, viewMode: $mode) {
    __typename
    ... on Camera { id privacyZones viewMode }
    ... on ValidationError { message errors { field message } }
    ... on NotAuthorized { message }
  }
}"""


async def test_only_admins_set_zones_and_each_change_is_audited(api: Api) -> None:
    _, server, clients = api
    for name in ("police-op", "police-viewer", "anonymous"):
        r = await clients[name].gql(SET, cam="cam-p", zones=[WINDOW])
        assert r["data"]["setCameraPrivacy"]["__typename"] == "NotAuthorized", name
    r = (await clients["admin"].gql(SET, cam="cam-p", zones=[WINDOW], mode="background"))["data"]
    assert r["setCameraPrivacy"] == {
        "__typename": "Camera",
        "id": "cam-p",
        "privacyZones": [WINDOW],
        "viewMode": "background",
    }
    # operators see the zones of their cameras (they are drawn in their views) but cannot change them
    seen = (await clients["police-op"].gql('{ camera(id: "cam-p") { privacyZones viewMode } }'))["data"][
        "camera"
    ]
    assert seen == {"privacyZones": [WINDOW], "viewMode": "background"}
    r = (await clients["admin"].gql(SET, cam="cam-p", zones=[]))["data"]["setCameraPrivacy"]
    assert r["privacyZones"] == [] and r["viewMode"] is None
    audit = (await clients["admin"].gql("{ auditLog { action actor target before after } }"))["data"][
        "auditLog"
    ]
    changes = [a for a in audit if a["action"] == "camera.privacy"]
    assert [(a["actor"], a["target"]) for a in changes] == [("admin", "camera:cam-p")] * 2
    by_after = {len(a["after"]["zones"]): a for a in changes}
    assert by_after[1]["before"] == {"zones": [], "view_mode": None}
    assert by_after[0]["before"] == {"zones": [WINDOW], "view_mode": "background"}
    # what the reconciler hands the camera actor
    await clients["admin"].gql(SET, cam="cam-p", zones=[WINDOW])
    groups = {g.name: g for g in await server.desired_groups()}
    spec: CameraSpec = next(c for c in groups["police"].cameras if c.id == "cam-p")
    assert spec.privacy_zones == (tuple((x, y) for x, y in WINDOW),) and spec.view_mode is None


async def test_bad_zones_are_refused_with_the_reason(api: Api) -> None:
    _, _, clients = api
    cases = [
        ([[[0.1, 0.1], [0.2, 0.2]]], "3 to 64 points"),
        ([[[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]], "outside the picture"),
        ("not a list", "zones"),
    ]
    for zones, reason in cases:
        r = (await clients["admin"].gql(SET, cam="cam-p", zones=zones))["data"]["setCameraPrivacy"]
        assert r["__typename"] == "ValidationError", zones
        assert reason in " ".join(f"{e['field']}: {e['message']}" for e in r["errors"]), r
    r = (await clients["admin"].gql(SET, cam="cam-p", zones=[], mode="clear"))["data"]["setCameraPrivacy"]
    assert r["__typename"] == "ValidationError" and "view_mode" in r["errors"][0]["field"]
    r = (await clients["admin"].gql(SET, cam="nope", zones=[]))["data"]["setCameraPrivacy"]
    assert r["__typename"] == "ValidationError" and "does not exist" in r["errors"][0]["message"]
