"""The HTTP side of emergency dispatch: the Atom feed of active CAP alerts, each CAP document,
and the evidence picture and clip a CAP message links to (people pixelated), behind the feed's
bearer token or, for the evidence, the signed, expiring link the message carries."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from smartcity.core.evidence import CLIP_MIME
from smartcity.integrations.cap_message import CAP_MIME, atom_feed
from smartcity.integrations.channels.cap import (
    CLIP_PATH,
    DOCUMENT_PATH,
    EVIDENCE_PATH,
    FEED_PATH,
    CapDispatch,
    link_signature,
)

FindEvidence = Callable[[str], Awaitable[Path | None]]  # event id -> its (privacy-safe) picture


def _bearer_ok(request: Request, ch: CapDispatch) -> bool:
    token = ch.cfg.feed_token
    got = request.headers.get("authorization", "")
    return token is not None and hmac.compare_digest(
        got.encode(), f"Bearer {token.get_secret_value()}".encode()
    )


async def _nothing(event_id: str) -> Path | None:
    return None


async def _signed_evidence(request: Request, ch: CapDispatch | None, find: FindEvidence, media_type: str) -> Response:
    """The incident's evidence file behind the signed, expiring link of its CAP message."""
    if ch is None or ch.cfg.feed_token is None:
        return PlainTextResponse("no dispatch feed", status_code=404)
    incident_id = request.path_params["incident_id"]
    try:
        exp = int(request.query_params.get("exp", ""))
    except ValueError:
        return PlainTextResponse("missing exp", status_code=400)
    want = link_signature(ch.cfg.feed_token.get_secret_value(), incident_id, exp)
    if exp < time.time() or not hmac.compare_digest(want, request.query_params.get("sig", "")):
        return PlainTextResponse("invalid or expired link", status_code=403)
    d = await ch.dispatch_of(incident_id)
    for event_id in d.event_ids if d is not None else ():
        path = await find(event_id)
        if path is not None:
            return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})
    return PlainTextResponse("no evidence", status_code=404)


def cap_routes(
    get_channel: Callable[[], CapDispatch | None],
    find_evidence: FindEvidence,
    find_clip: FindEvidence | None = None,
) -> list[Route]:
    """Routes of the feed, the documents and the evidence (picture and clip, found by event id);
    404 while no `cap` channel runs."""

    def channel_or_none(request: Request) -> CapDispatch | None:
        ch = get_channel()
        return ch if ch is not None and ch.cfg.feed_token is not None else None

    async def feed(request: Request) -> Response:
        ch = channel_or_none(request)
        if ch is None:
            return PlainTextResponse("no dispatch feed", status_code=404)
        if not _bearer_ok(request, ch):
            return PlainTextResponse("unauthorised", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = atom_feed(
            ch.feed_entries(),
            feed_id=f"urn:smartcity:{ch.cfg.sender}:active",
            title=f"{ch.cfg.sender_name}: active alerts",
            self_url=f"{ch.cfg.public_url or ''}{FEED_PATH}",
            now=time.time(),
        )
        return Response(body, media_type="application/atom+xml", headers={"Cache-Control": "no-store"})

    async def document(request: Request) -> Response:
        ch = channel_or_none(request)
        if ch is None:
            return PlainTextResponse("no dispatch feed", status_code=404)
        if not _bearer_ok(request, ch):
            return PlainTextResponse("unauthorised", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        doc = await ch.document(request.path_params["identifier"])
        if doc is None:
            return PlainTextResponse("no such CAP message", status_code=404)
        return Response(doc, media_type=CAP_MIME, headers={"Cache-Control": "no-store"})

    async def evidence(request: Request) -> Response:
        return await _signed_evidence(request, channel_or_none(request), find_evidence, "image/jpeg")

    async def clip(request: Request) -> Response:
        return await _signed_evidence(request, channel_or_none(request), find_clip or _nothing, CLIP_MIME)

    return [
        Route(FEED_PATH, feed, methods=["GET"], name="cap-feed"),
        Route(
            DOCUMENT_PATH.replace("{identifier}", "{identifier:str}"),
            document,
            methods=["GET"],
            name="cap-document",
        ),
        Route(
            EVIDENCE_PATH.replace("{incident_id}", "{incident_id:str}"),
            evidence,
            methods=["GET"],
            name="cap-evidence",
        ),
        Route(CLIP_PATH.replace("{incident_id}", "{incident_id:str}"), clip, methods=["GET"], name="cap-clip"),
    ]
