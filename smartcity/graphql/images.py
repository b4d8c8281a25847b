"""Picture URLs (camera snapshots, evidence): their paths, and the short-lived, path-bound
picture token that an <img> tag carries in place of the API token (which never goes in a URL)."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from smartcity.graphql.access import maybe_principal, services


def snapshot_path(camera_id: str) -> str:
    return f"/cameras/{camera_id}/snapshot.jpg"


def evidence_path(event_id: str) -> str:
    return f"/evidence/{event_id}.jpg"


def evidence_clip_path(event_id: str) -> str:
    return f"/evidence/{event_id}.webm"


def signed_url(info: Info[Any, Any], path: str) -> str:
    """`path?token=<picture token of the caller for this path>` (the bare path for no caller)."""
    p = maybe_principal(info)
    if p is None:
        return path
    return f"{path}?token={services(info).signer.issue_image(p, path)}"
