"""Latest known health of every camera, kept from the bus (for queries and /healthz)."""

from __future__ import annotations

from smartcity.core.events import CameraHealth


class StatusBoard:
    def __init__(self) -> None:
        self._latest: dict[str, CameraHealth] = {}

    def update(self, h: CameraHealth) -> None:
        prev = self._latest.get(h.camera_id)
        if prev is None or (h.t, h.seq) >= (prev.t, prev.seq):
            self._latest[h.camera_id] = h

    def get(self, camera_id: str) -> CameraHealth | None:
        return self._latest.get(camera_id)

    def all(self) -> dict[str, CameraHealth]:
        return dict(self._latest)
