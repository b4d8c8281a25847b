"""Runs the configured extensions: starts them in config order, each on its own context,
stops them in reverse order, and serves their routes under `/ext/<name>/`.

One extension that fails to build, start or stop is logged with its name and left out; the
others and the server go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from smartcity.core.aio import wait_for
from smartcity.extensions.base import Extension
from smartcity.extensions.context import Caller, ExtensionContext, ExtensionServices, GraphQLParts
from smartcity.extensions.registry import Configured, ExtensionPlan

log = logging.getLogger(__name__)

Authenticate = Callable[[Request], Awaitable[Caller | None]]
# raises when these parts (all running extensions' plus one more) make no valid schema
CheckGraphQL = Callable[[Sequence[GraphQLParts]], object]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Running:
    name: str
    extension: Extension
    ctx: ExtensionContext


class _Guarded:
    """An extension's routes behind the API's sign-in: 401 without a valid token, 403 for a
    viewer's writes; the caller rides in the request state."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no WebSocket routes for extensions (yet)
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope, receive)
        try:
            caller = await self.authenticate(request)
        except Exception as exc:  # the database is away: say so, without details
            log.warning("caller of %s unknown: %s", request.url.path, type(exc).__name__)
            caller, unavailable = None, True
        else:
            unavailable = False
        if caller is None:
            body, code = ({"error": "service unavailable"}, 503) if unavailable else ({"error": "not authenticated: send a bearer token"}, 401)
            await JSONResponse(body, status_code=code)(scope, receive, send)
            return
        if request.method not in SAFE_METHODS and not caller.can_operate:
            await JSONResponse({"error": "an operator or admin role is needed"}, status_code=403)(scope, receive, send)
            return
        state = {**scope.get("state", {}), "caller": caller}
        await self.app({**scope, "state": state}, receive, send)


class ExtensionHost:
    """The extensions of one server. `router` is mounted at `/ext` by the app."""

    def __init__(
        self,
        plan: ExtensionPlan,
        authenticate: Authenticate,
        check_graphql: CheckGraphQL,
        *,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.plan = plan
        self.router = Router()
        self._authenticate = authenticate
        self._check_graphql = check_graphql
        self._start_timeout = start_timeout_s
        self._running: list[_Running] = []
        self.failed: dict[str, str] = {}  # name -> why it does not run

    @property
    def running(self) -> list[str]:
        return [r.name for r in self._running]

    def graphql(self) -> list[GraphQLParts]:
        """The GraphQL parts of the running extensions, in start order."""
        return [r.ctx.graphql for r in self._running if r.ctx.graphql]

    def collect(self) -> Iterator[Metric]:
        """The metrics of the running extensions (one failing collector is logged and skipped)."""
        for r in list(self._running):
            for collector in r.ctx.collectors:
                try:
                    yield from list(collector.collect())
                except Exception:
                    log.exception("extension %s: metrics failed", r.name)

    async def start(self, services: ExtensionServices) -> None:
        for gone in self.plan.unavailable:
            log.error("extension %s not started: %s", gone.name, gone.reason)
            self.failed[gone.name] = gone.reason
        for entry in self.plan.entries:
            if entry.config.enabled:
                await self._start_one(entry, services)

    async def _start_one(self, entry: Configured, services: ExtensionServices) -> None:
        ctx = ExtensionContext(entry.name, services, entry.spec.metadata)
        started: Extension | None = None
        try:
            extension = entry.spec.build(entry.config)
            await wait_for(extension.start(ctx), self._start_timeout)
            started = extension
            if ctx.graphql:  # a field name already taken: refused now, not at the first request
                self._check_graphql([*self.graphql(), ctx.graphql])
        except Exception as exc:
            why = _reason(exc)
            log.exception("extension %s failed to start: %s", entry.name, why)
            self.failed[entry.name] = why
            if started is not None:  # its start completed: it may hold more than ctx knows
                await self._stop_one(entry.name, started)
            await ctx.close(timeout_s=self._start_timeout)
            return
        self._running.append(_Running(entry.name, extension, ctx))
        if ctx.routes:
            self.router.routes.append(Mount(f"/{entry.name}", app=_Guarded(Router(ctx.routes), self._authenticate)))
        log.info("extension %s started", entry.name)

    async def stop(self, timeout_s: float) -> None:
        """Stop each running extension, newest first: its `stop()`, then its context."""
        while self._running:
            r = self._running.pop()
            self.router.routes[:] = [m for m in self.router.routes if not (isinstance(m, Mount) and m.path == f"/{r.name}")]
            await self._stop_one(r.name, r.extension, timeout_s)
            await r.ctx.close(timeout_s=timeout_s)
            log.info("extension %s stopped", r.name)

    async def _stop_one(self, name: str, extension: Extension, timeout_s: float | None = None) -> None:
        try:
            await wait_for(extension.stop(), self._start_timeout if timeout_s is None else timeout_s)
        except Exception as exc:
            log.exception("extension %s failed to stop cleanly: %s", name, _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"needs the Python package {exc.name!r}, which is not installed"
    if isinstance(exc, TimeoutError):
        return "start timed out"
    return f"{type(exc).__name__}: {exc}"
