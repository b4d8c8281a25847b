"""The camera-group actors as a follower server sees them (several servers, `cluster`): the
leader's reconciler runs them; a follower finds them by name in the Ray namespace and pings
them, so that its live views, snapshots and signal pushes reach the running cameras and its
health report says what runs. It starts, stops and restarts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from smartcity.actors.runtime import ACTOR_PREFIX, GroupSpec, GroupStatus
from smartcity.core.aio import raise_if_cancelling, wait_for
from smartcity.core.video import CameraRuntime, InferenceRuntime

log = logging.getLogger(__name__)


class NamedGroups:
    """Looks up and pings every desired group's actor each `interval_s` (`run()`)."""

    def __init__(
        self,
        desired: Callable[[], Awaitable[list[GroupSpec]]],
        *,
        interval_s: float = 2.0,
        call_timeout_s: float = 5.0,
        idle: Callable[[], bool] = lambda: False,
    ) -> None:
        self._desired = desired
        self._idle = idle  # True while this server leads: its reconciler knows the actors
        self.interval_s = interval_s
        self._timeout = call_timeout_s
        self._groups: dict[str, GroupStatus] = {}
        self._handles: dict[str, Any] = {}
        self._camera_group: dict[str, str] = {}

    async def run(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                if not self._idle():
                    await self.refresh()
            except Exception as exc:  # the database is away: keep the last view
                log.warning("actor directory not refreshed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.interval_s)

    async def refresh(self) -> None:
        specs = await self._desired()
        self._camera_group = {c.id: g.name for g in specs for c in g.cameras}
        found = await asyncio.gather(*(self._ping(g) for g in specs))
        self._groups = {g.name: st for g, st in zip(specs, found, strict=True)}
        for name in set(self._handles) - set(self._groups):
            del self._handles[name]

    async def _ping(self, spec: GroupSpec) -> GroupStatus:
        cameras = tuple(c.id for c in spec.cameras)
        try:
            handle: Any = self._handles.get(spec.name)
            if handle is None:
                handle = await asyncio.to_thread(_named_actor, ACTOR_PREFIX + spec.name)
            info = await wait_for(handle.ping.remote(), self._timeout)
        except Exception as exc:  # not started yet, restarting, or its leader died with it
            self._handles.pop(spec.name, None)
            return GroupStatus(False, cameras, 0, 0, 0, f"{type(exc).__name__}: {exc}"[:300])
        self._handles[spec.name] = handle
        return GroupStatus(True, cameras, 1, 0, 0, "", node_id=info.node_id)

    # ---- what RayVideo reads (the reconciler's interface) -------------------------------------
    def status(self) -> dict[str, GroupStatus]:
        return dict(self._groups)

    def runtime(self) -> tuple[CameraRuntime, ...]:
        return tuple(
            CameraRuntime(group=name, alive=st.alive, restarts=0, cameras=st.cameras, node=st.node_id)
            for name, st in sorted(self._groups.items())
        )

    def inference_status(self) -> tuple[InferenceRuntime, ...]:
        return ()  # the leader's to keep and report

    def camera_handle(self, camera_id: str) -> Any:
        group = self._camera_group.get(camera_id)
        st = self._groups.get(group) if group is not None else None
        return self._handles.get(group) if group is not None and st is not None and st.alive else None

    def poke(self) -> None:
        """A rule or camera changed here: the leader's reconciler reads it at its next pass."""


def _named_actor(name: str) -> Any:
    import ray

    return ray.get_actor(name)
