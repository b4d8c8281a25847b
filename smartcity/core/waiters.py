"""Futures that resolve once every one of their ids has been handled (committed, fused...).

A producer registers `expect(ids)` before publishing; the consumer calls `done(ids)` after its
work is durable. Used to acknowledge events to their producer only once they are safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class IdWaiters:
    def __init__(self) -> None:
        self._by_id: dict[str, list[tuple[asyncio.Future[None], set[str]]]] = {}

    def expect(self, ids: Iterable[str]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending = set(ids)
        if not pending:
            fut.set_result(None)
            return fut
        entry = (fut, pending)
        for i in pending:
            self._by_id.setdefault(i, []).append(entry)
        return fut

    def done(self, ids: Iterable[str]) -> None:
        if not self._by_id:
            return
        for i in ids:
            for fut, pending in self._by_id.pop(i, ()):
                pending.discard(i)
                if not pending and not fut.done():
                    fut.set_result(None)

    def __len__(self) -> int:
        return len(self._by_id)
