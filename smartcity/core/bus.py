"""In-process event bus of the asyncio core.

Each subscriber owns a bounded queue with an explicit overflow policy, so a slow
subscriber never grows memory without bound and never silently loses an event:

- BLOCK: the publisher waits for room (backpressure up to the producer; used for
  events that must not be lost: the writer, fusion).
- DROP_OLDEST: the oldest queued item is discarded and counted (live status, frames).
- CLOSE: the subscription is closed with a reason when full (a live API client that
  cannot keep up is disconnected instead of slowing the others).

With several servers (`smartcity.cluster`), events of the other servers are published here too,
marked `remote`: a subscription made with `remote=False` (the writer, fusion, the feed to the
other servers) sees only this server's own events. A bus made with `dedupe` remembers that many
recent event ids: an id published again (a new leader pulling events the old one had already
fanned out) reaches only the `remote=False` subscriptions, whose acknowledgements need it, so that
a live subscriber gets each event once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Generic, TypeVar

from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Event

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Event)


class Overflow(StrEnum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    CLOSE = "close"


Predicate = Callable[[Event], bool]


class Subscription(Generic[T]):
    """A bounded, typed stream of events; `close()` is its undo. Iterate with `async for`."""

    def __init__(
        self,
        bus: EventBus,
        name: str,
        types: tuple[type[Event], ...],
        maxsize: int,
        overflow: Overflow,
        predicate: Predicate | None,
        remote: bool = True,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.bus = bus
        self.name = name
        self.types = types
        self.maxsize = maxsize
        self.overflow = overflow
        self.predicate = predicate
        self.remote = remote  # also receives the events fanned in from other servers
        self.delivered = 0
        self.dropped = 0
        self.closed_reason: str | None = None
        self._items: deque[T] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def __repr__(self) -> str:
        return f"<Subscription {self.name} {len(self._items)}/{self.maxsize} {self.overflow}>"

    def wants(self, event: Event) -> bool:
        if self.types and not isinstance(event, self.types):
            return False
        return self.predicate is None or self.predicate(event)

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def qsize(self) -> int:
        return len(self._items)

    async def _put(self, event: T) -> None:
        while len(self._items) >= self.maxsize and not self.closed:
            if self.overflow is Overflow.DROP_OLDEST:
                self._items.popleft()
                self.dropped += 1
                self.bus.dropped_total += 1
                break
            if self.overflow is Overflow.CLOSE:
                self.close(f"subscriber {self.name!r} too slow: queue of {self.maxsize} full")
                return
            self._writable.clear()
            await self._writable.wait()
        if self.closed:
            return
        self._items.append(event)
        self._readable.set()

    def close(self, reason: str = "unsubscribed") -> None:
        """Stop receiving; pending `get()` calls raise SubscriptionClosed(reason)."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self.bus._remove(self)
        self._readable.set()
        self._writable.set()

    async def get(self) -> T:
        while not self._items:
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if not self._items:
            self._readable.clear()
        self._writable.set()
        self.delivered += 1
        return item

    def get_nowait_batch(self, limit: int) -> list[T]:
        """Up to `limit` queued items without waiting (for batching consumers)."""
        out: list[T] = []
        while self._items and len(out) < limit:
            out.append(self._items.popleft())
        if out:
            self._writable.set()
            self.delivered += len(out)
        if not self._items:
            self._readable.clear()
        return out

    async def get_batch(self, limit: int) -> list[T]:
        """Wait for at least one item, then take up to `limit` without waiting more."""
        first = await self.get()
        return [first, *self.get_nowait_batch(limit - 1)]

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of typed events to bounded subscriptions. Publishing awaits BLOCK subscribers."""

    def __init__(self, *, dedupe: int = 0) -> None:
        self._subs: list[Subscription[Event]] = []
        self._dedupe = dedupe
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.repeated_total = 0  # ids published again, kept from the live subscribers
        self.published_total = 0
        self.dropped_total = 0
        self.closed_by_overflow = 0

    @property
    def subscriptions(self) -> list[Subscription[Event]]:
        return list(self._subs)

    def subscribe(
        self,
        name: str,
        types: Iterable[type[T]] = (),
        *,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.BLOCK,
        predicate: Predicate | None = None,
        remote: bool = True,
    ) -> Subscription[T]:
        """`remote=False`: only events published on this server, each time it is published."""
        sub: Subscription[T] = Subscription(self, name, tuple(types), maxsize, overflow, predicate, remote)
        self._subs.append(sub)  # type: ignore[arg-type]
        return sub

    def listen(
        self,
        name: str,
        types: Iterable[type[T]],
        handler: Callable[[T], Awaitable[None]],
        *,
        start: Callable[[str, Callable[[], Awaitable[None]]], object],
        maxsize: int = 1000,
        overflow: Overflow = Overflow.BLOCK,
        remote: bool = True,
    ) -> Callable[[], None]:
        """Run `handler` for each event in a task started through `start` (a supervisor).

        A failing handler is logged with the event and the loop goes on. Returns the undo.
        """
        sub = self.subscribe(name, types, maxsize=maxsize, overflow=overflow, remote=remote)

        async def run() -> None:
            async for event in sub:
                try:
                    await handler(event)
                except Exception:
                    log.exception("listener %s failed on %s %s", name, event.type, event.event_id)

        start(f"listener:{name}", run)
        return sub.close

    def _remove(self, sub: Subscription[T]) -> None:
        try:
            self._subs.remove(sub)  # type: ignore[arg-type]
        except ValueError:
            pass
        if sub.closed_reason and sub.closed_reason.startswith("subscriber") and "too slow" in sub.closed_reason:
            self.closed_by_overflow += 1

    async def publish(self, event: Event, *, remote: bool = False) -> None:
        """Queue `event` for every subscription that wants it; `remote`: fanned in from another
        server (only subscriptions made with `remote=True` get it)."""
        self.published_total += 1
        repeated = self._seen(event.event_id) if self._dedupe else False
        for sub in list(self._subs):
            # the other servers' events: to the live side, once; a repeat of this server's own:
            # only to those that acknowledge it (writer, fusion)
            ok = (sub.remote and not repeated) if remote else not (repeated and sub.remote)
            if ok and sub.wants(event):
                await sub._put(event)

    def _seen(self, event_id: str) -> bool:
        if event_id in self._recent:
            self._recent.move_to_end(event_id)
            self.repeated_total += 1
            return True
        self._recent[event_id] = None
        if len(self._recent) > self._dedupe:
            self._recent.popitem(last=False)
        return False

    async def publish_many(self, events: Iterable[Event], *, remote: bool = False) -> None:
        for event in events:
            await self.publish(event, remote=remote)

    def close_all(self, reason: str = "bus shut down") -> None:
        for sub in list(self._subs):
            sub.close(reason)
