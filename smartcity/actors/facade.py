"""RayVideo: the one implementation of `core.video.VideoControl`, over the reconciler's actors.

Every Ray call that the API, the live views or an extension needs goes through here, bounded
by a timeout: a camera that is starting, restarting or gone answers None / False / nothing,
never an exception, so that no caller above the actors handles Ray's errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from smartcity.actors.runtime import GroupStatus
from smartcity.core.aio import wait_for
from smartcity.core.jsonvalue import JsonValue
from smartcity.core.video import CameraRuntime, InferenceRuntime, LiveFrame, SignalPush

log = logging.getLogger(__name__)

LIVE_FRAME_TIMEOUT_S = 5.0
SIGNAL_TIMEOUT_S = 5.0
# a snapshot renders and encodes a JPEG in the actor: slower than handing over a frame
SNAPSHOT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class RayHealth:
    """What the server's health report says of Ray: the connection and every actor."""

    connected: bool
    address: str | None
    groups: dict[str, GroupStatus]
    inference: tuple[InferenceRuntime, ...]

    @property
    def ok(self) -> bool:
        return self.connected and all(g.alive for g in self.groups.values()) and all(i.alive for i in self.inference)

    def to_json(self) -> dict[str, JsonValue]:
        """The `ray`, `actors` and `inference` parts of the server's health report."""
        actors: dict[str, JsonValue] = {
            name: {
                "alive": g.alive,
                "cameras": list(g.cameras),
                "starts": g.starts,
                "cursor": g.cursor,
                "pulled": g.pulled,
                "last_error": g.last_error,
                "node": g.node_id,
            }
            for name, g in self.groups.items()
        }
        inference: dict[str, JsonValue] = {i.name: i.alive for i in self.inference}
        return {"ray": {"ok": self.connected, "address": self.address}, "actors": actors, "inference": inference}


class ActorDirectory(Protocol):
    """Where the camera group actors are found: the reconciler that runs them (the leader, or the
    only server), or `actors.directory.NamedGroups` (a follower)."""

    def status(self) -> dict[str, GroupStatus]: ...
    def runtime(self) -> tuple[CameraRuntime, ...]: ...
    def inference_status(self) -> tuple[InferenceRuntime, ...]: ...
    def camera_handle(self, camera_id: str) -> Any: ...
    def poke(self) -> None: ...


class RayVideo:
    """The video side of a server that runs Ray: camera group actors kept by `reconciler`."""

    def __init__(self, reconciler: ActorDirectory, *, address: str | None = None) -> None:
        self._reconciler = reconciler
        self._address = address

    def use(self, directory: ActorDirectory) -> None:
        """Find the actors through `directory` from now on (a server became or stopped being
        the leader)."""
        self._reconciler = directory

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        frame: LiveFrame | None = await self._call(camera_id, "live_frame", LIVE_FRAME_TIMEOUT_S, camera_id)
        return frame  # None also while the actor restarts: a view shows its last picture meanwhile

    async def snapshot(self, camera_id: str, *, pixelate: bool = True) -> bytes | None:
        jpeg: bytes | None = await self._call(camera_id, "snapshot", SNAPSHOT_TIMEOUT_S, camera_id, pixelate=pixelate)
        return jpeg

    async def push_signal(self, push: SignalPush) -> bool:
        applied: bool | None = await self._call(push.camera_id, "set_signal_state", SIGNAL_TIMEOUT_S, push)
        if applied is None:
            log.warning("signal state for %s not applied: camera %s is not running", push.rule_id, push.camera_id)
        return bool(applied)

    def rules_changed(self, camera_id: str) -> None:
        # reconcile now: the camera's group actor gets its rules without a stream restart
        self._reconciler.poke()

    def runtime(self) -> tuple[CameraRuntime, ...]:
        return self._reconciler.runtime()

    def health(self) -> RayHealth:
        import ray

        return RayHealth(
            connected=ray.is_initialized(),
            address=self._address,
            groups=self._reconciler.status(),
            inference=self._reconciler.inference_status(),
        )

    async def _call(self, camera_id: str, method: str, timeout_s: float, *args: Any, **kwargs: Any) -> Any:
        handle = self._reconciler.camera_handle(camera_id)
        if handle is None:
            return None
        try:
            return await wait_for(getattr(handle, method).remote(*args, **kwargs), timeout_s)
        except Exception as exc:  # dead, restarting or too slow: the reconciler restarts it
            log.debug("%s of camera %s failed: %s: %s", method, camera_id, type(exc).__name__, exc)
            return None
