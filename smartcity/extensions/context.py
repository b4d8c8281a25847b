"""What a running extension may use: the `ExtensionContext` the server hands to `start(ctx)`.

Everything that goes through the context belongs to that extension and is undone when it
stops (or when its start fails): bus subscriptions, tasks of its own supervisor, HTTP routes
and GraphQL fields. Storage is reached through read-only queries and its own tables only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client.registry import Collector
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from smartcity.core.bus import EventBus, Overflow
from smartcity.core.clock import Clock
from smartcity.core.events import Event
from smartcity.core.jsonvalue import JsonValue
from smartcity.core.readonly import ReadOnlyStore
from smartcity.core.supervisor import TaskSupervisor
from smartcity.core.video import VideoControl
from smartcity.extensions.base import ExtensionError
from smartcity.storage.audit_repo import append as append_audit

T = TypeVar("T", bound=Event)

MAX_ROUTES = 64
MAX_QUEUE = 100_000


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user of a request to an extension route (`caller_of(request)`)."""

    username: str
    role: str  # viewer | operator | admin
    groups: frozenset[str] | None  # None: every camera group

    @property
    def can_operate(self) -> bool:
        return self.role in ("operator", "admin")

    def sees_group(self, group: str) -> bool:
        return self.role == "admin" or self.groups is None or group in self.groups


def caller_of(request: HTTPConnection) -> Caller:
    """Who called an extension route (the server checked the token before the route ran)."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise ExtensionError("no caller: this request did not come through the extension routes")
    return caller


@dataclass(frozen=True, slots=True)
class GraphQLParts:
    """Strawberry types whose fields join the API's Query, Mutation and Subscription.

    Their root fields are refused to anonymous callers, and mutations to viewers, before any
    resolver runs; a field name already taken is refused when the extension starts."""

    query: tuple[type[object], ...] = ()
    mutation: tuple[type[object], ...] = ()
    subscription: tuple[type[object], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.query or self.mutation or self.subscription)

    def __add__(self, other: GraphQLParts) -> GraphQLParts:
        return GraphQLParts(
            self.query + other.query, self.mutation + other.mutation, self.subscription + other.subscription
        )


class ExtensionTables:
    """Connections for the extension's own tables (created by its Alembic branch)."""

    def __init__(self, engine: AsyncEngine, metadata: MetaData | None, name: str = "extension") -> None:
        self._engine = engine
        self.metadata = metadata
        self.name = name

    async def audit(
        self, conn: AsyncConnection, *, actor: str, action: str, target: str, before: JsonValue = None, after: JsonValue = None
    ) -> None:
        """An entry in the server's audit log (append-only), written in `conn`'s transaction so it
        lands with the change it describes; the action is namespaced `<extension>.<action>`."""
        await append_audit(
            conn, at=time.time(), actor=actor, action=f"{self.name}.{action}", target=target, before=before, after=after
        )

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception."""
        async with self._engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self._engine.connect() as conn:
            yield conn


@dataclass(frozen=True)
class ExtensionServices:
    """What the server lends every extension (one per server; each context wraps it)."""

    bus: EventBus
    clock: Clock
    data: ReadOnlyStore
    video: VideoControl
    engine: AsyncEngine


@dataclass
class ExtensionContext:
    """Handed to `Extension.start`; valid until the extension stops."""

    name: str
    services: ExtensionServices
    metadata: MetaData | None = None
    # owns the extension's tasks (its listeners too): cancelled when it stops
    supervisor: TaskSupervisor = field(default_factory=TaskSupervisor, init=False)
    routes: list[BaseRoute] = field(default_factory=list, init=False)
    graphql: GraphQLParts = field(default_factory=GraphQLParts, init=False)
    # served on /metrics with the server's while the extension runs
    collectors: list[Collector] = field(default_factory=list, init=False)
    _undo: list[Callable[[], None]] = field(default_factory=list, init=False)
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.log = logging.getLogger(f"smartcity.extensions.{self.name}")
        self.tables = ExtensionTables(self.services.engine, self.metadata, self.name)

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def data(self) -> ReadOnlyStore:
        """Read-only queries: cameras, rule events, counts, incidents."""
        return self.services.data

    @property
    def video(self) -> VideoControl:
        """Live frames and snapshots of the cameras; signal states pushed to red-light rules."""
        return self.services.video

    def _check_open(self) -> None:
        if self._closed:
            raise ExtensionError(f"extension {self.name!r} is stopped")

    def subscribe(
        self,
        types: type[T] | tuple[type[T], ...],
        handler: Callable[[T], Awaitable[None]],
        *,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Callable[[], None]:
        """Run `handler` for each published event of `types`, in order, in a task of this
        extension; a failing call is logged and the next event comes. Returns the undo.

        BLOCK (the default) never loses an event, so a handler that falls `maxsize` events
        behind slows the publishers: keep handlers short and hand long work to a task.

        Only this server's events: with several servers (`cluster`), camera events reach the
        extensions of the leader, so that an outside system is acted on once."""
        self._check_open()
        if not 1 <= maxsize <= MAX_QUEUE:
            raise ValueError(f"maxsize must be in 1..{MAX_QUEUE}")
        wanted = types if isinstance(types, tuple) else (types,)
        label = f"ext:{self.name}:{'+'.join(t.type for t in wanted)}:{len(self._undo)}"
        undo = self.services.bus.listen(
            label, wanted, handler, start=self.supervisor.start, maxsize=maxsize, overflow=overflow, remote=False
        )
        self._undo.append(undo)
        return undo

    def add_routes(self, routes: Sequence[BaseRoute]) -> None:
        """HTTP routes served under `/ext/<name>/`: signed-in callers only, and operators or
        admins for any method but GET/HEAD/OPTIONS; `caller_of(request)` says who."""
        self._check_open()
        if len(self.routes) + len(routes) > MAX_ROUTES:
            raise ExtensionError(f"extension {self.name!r}: at most {MAX_ROUTES} routes")
        self.routes.extend(routes)

    def add_graphql(
        self, *, query: type[object] | None = None, mutation: type[object] | None = None, subscription: type[object] | None = None
    ) -> None:
        """Strawberry types whose fields join the API (see GraphQLParts for the access rules)."""
        self._check_open()
        self.graphql = self.graphql + GraphQLParts(
            (query,) if query else (), (mutation,) if mutation else (), (subscription,) if subscription else ()
        )

    def add_metrics(self, collector: Collector) -> None:
        """Prometheus metrics of this extension (name them `smartcity_<name>_...`), collected
        with the server's on every scrape of /metrics until the extension stops."""
        self._check_open()
        self.collectors.append(collector)

    async def close(self, timeout_s: float) -> None:
        """Undo the subscriptions, then cancel the extension's tasks (newest first)."""
        self._closed = True
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        await self.supervisor.stop(timeout_s=timeout_s)
