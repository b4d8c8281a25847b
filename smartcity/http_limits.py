"""Limits on what one request may make the server read: the body size, in front of every route.

A body over the limit is answered 413 before the application sees it when `Content-Length`
announces it, or as soon as the bytes received pass the limit (chunked bodies, or a client that
sends more than it announced): the rest is never read, so memory stays bounded by the limit.
A WebSocket message over the same limit closes its connection (1009, message too big) before the
application sees it.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodyTooLarge(Exception):
    """Raised from `receive` inside the application once its body passed the limit."""


class BodySizeLimit:
    """Pure ASGI middleware: HTTP request bodies over `max_bytes` get 413; WebSocket messages over
    it close the connection with 1009."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:  # the application answered without reading it all: nothing left to say
                return
            await self._refuse(send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
                if size > self.max_bytes:
                    closed = True
                    reason = f"message too big: at most {self.max_bytes} bytes"
                    await send({"type": "websocket.close", "code": 1009, "reason": reason})
                    return {"type": "websocket.disconnect", "code": 1009}  # the application cleans up
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # nothing more goes out on a connection closed here
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        body = f"request body too large: at most {self.max_bytes} bytes (server.max_body_bytes)\n".encode()
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the unread rest of the body makes the connection unusable
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or ()
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the ASGI server refuses a malformed length itself
    return None
