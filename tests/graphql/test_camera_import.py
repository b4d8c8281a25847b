"""A city's camera inventory in one mutation: CSV or GeoJSON, one transaction, cameras of the
imported groups that the file leaves out kept, disabled or deleted; every problem named by its
row; admins only; audited without URLs (they may hold passwords)."""

from __future__ import annotations

import json

import pytest
from api_helpers import Client

from smartcity.app import Server
from smartcity.core.camera_import import CameraImportError, ImportFormat, parse_cameras

IMPORT = """
mutation($format: CameraFileFormat!, $data: String!, $missing: MissingCameras!) {
  importCameras(format: $format, data: $data, missing: $missing) {
    __typename
    ... on CameraImport { created updated absent missing }
    ... on ValidationError { errors { field message } }
  }
}"""

CSV = (
    "id,url,name,group,enabled,analysis_fps,site\n"
    "cam-p,rtsp://u:secret@10.9.9.9/p,Gare,police,no,2,centre\n"
    "cam-a,rtsp://10.9.9.10/a,,police,,,\n"
    "cam-b,rtsp://10.9.9.11/b,Port,police,yes,1,port\n"
)


def geojson(*cams: dict[str, object]) -> str:
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.27, 48.73]}, "properties": c}
        for c in cams
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


async def test_an_inventory_is_imported_and_reconciled_in_one_mutation(
    api: tuple[str, Server, dict[str, Client]],
) -> None:
    _, _, clients = api
    admin = clients["admin"]
    res = (await admin.gql(IMPORT, format="CSV", data=CSV, missing="DISABLE"))["data"]["importCameras"]
    assert res == {
        "__typename": "CameraImport",
        "created": ["cam-a", "cam-b"],
        "updated": ["cam-p"],
        "absent": [],
        "missing": "DISABLE",
    }
    cams = {c["id"]: c for c in (await admin.gql("{ cameras { id name group enabled } }"))["data"]["cameras"]}
    assert cams["cam-p"] == {"id": "cam-p", "name": "Gare", "group": "police", "enabled": False}
    assert cams["cam-a"]["enabled"] is True and cams["cam-b"]["name"] == "Port"

    # the next inventory of the police lists cam-a only: the others of that group go, technical stays
    data = geojson({"id": "cam-a", "url": "rtsp://10.9.9.10/a2", "group": "police"})
    res = (await admin.gql(IMPORT, format="GEOJSON", data=data, missing="DELETE"))["data"]["importCameras"]
    assert res["updated"] == ["cam-a"] and res["absent"] == ["cam-b", "cam-p"] and res["created"] == []
    assert sorted(c["id"] for c in (await admin.gql("{ cameras { id } }"))["data"]["cameras"]) == [
        "cam-a",
        "cam-t",
    ]

    audit = (await admin.gql("{ auditLog(first: 10) { action after } }"))["data"]["auditLog"]
    imports = [a for a in audit if a["action"] == "camera.import"]
    assert len(imports) == 2
    assert "secret" not in json.dumps(audit) and "rtsp://" not in json.dumps(imports)


async def test_a_bad_inventory_changes_nothing_and_says_where(
    api: tuple[str, Server, dict[str, Client]],
) -> None:
    _, _, clients = api
    admin = clients["admin"]
    bad = "id,url,group\ncam-x,ftp://10.0.0.1/x,police\ncam-y,rtsp://10.0.0.2/y,police\ncam-y,rtsp://10.0.0.3/y,police\n"
    res = (await admin.gql(IMPORT, format="CSV", data=bad, missing="DELETE"))["data"]["importCameras"]
    assert res["__typename"] == "ValidationError"
    lines = [f"{e['field']}: {e['message']}" for e in res["errors"]]
    assert any(line.startswith("row 2: url: ") and "unsupported scheme 'ftp'" in line for line in lines), (
        lines
    )
    assert any(line.startswith("row 4: id: ") and "repeats row 3" in line for line in lines), lines
    refused = "id,url,group\ncam-z,http://169.254.169.254/latest,police\n"
    res = (await admin.gql(IMPORT, format="CSV", data=refused, missing="KEEP"))["data"]["importCameras"]
    assert (
        res["__typename"] == "ValidationError"
        and "169.254.169.254 is not allowed" in res["errors"][0]["message"]
    )
    assert sorted(c["id"] for c in (await admin.gql("{ cameras { id } }"))["data"]["cameras"]) == [
        "cam-p",
        "cam-t",
    ]
    res = (await clients["police-op"].gql(IMPORT, format="CSV", data=CSV, missing="KEEP"))["data"][
        "importCameras"
    ]
    assert res["__typename"] == "NotAuthorized"


def test_files_are_checked_before_any_camera() -> None:
    with pytest.raises(CameraImportError) as info:
        parse_cameras("id,url,grp\nc,rtsp://h/x,police\n", ImportFormat.CSV)
    assert info.value.errors == [
        "unknown column 'grp' (known: id, url, name, group, enabled, analysis_fps, site)"
    ]
    with pytest.raises(CameraImportError) as info:
        parse_cameras(
            json.dumps({"type": "FeatureCollection", "features": [{"properties": {"id": "c", "uri": "x"}}]}),
            ImportFormat.GEOJSON,
        )
    assert "feature 0: unknown properties ['uri']" in info.value.errors[0]
    with pytest.raises(CameraImportError, match="names no camera"):
        parse_cameras("id,url\n", ImportFormat.CSV)
    cams = parse_cameras(geojson({"id": "c1", "url": "demo://vtest", "enabled": "off"}), ImportFormat.GEOJSON)
    assert [(c.id, c.enabled, c.group) for c in cams] == [("c1", False, "default")]
