"""The plain HTTP routes next to GraphQL: camera snapshots and evidence pictures (the same
principal check as the API, on every request), /healthz (status for anyone, details for an
admin) and /metrics (Prometheus, with the metrics token or an admin's API token)."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from smartcity.core.evidence import CLIP_MIME
from smartcity.core.jsonvalue import JsonValue
from smartcity.core.video import VideoControl
from smartcity.graphql.access import authenticate
from smartcity.graphql.auth import AuthError, Principal, TokenSigner, bearer
from smartcity.graphql.images import evidence_clip_path, evidence_path, snapshot_path
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceStore
from smartcity.storage.repo import CameraRepo

log = logging.getLogger(__name__)

NOT_AUTHENTICATED = {"error": "not authenticated: send a bearer token, or use a URL the API gave"}


class RoutedServer(Protocol):
    """What the routes need of the running server (built by its lifespan)."""

    db: Database | None
    signer: TokenSigner | None
    evidence: EvidenceStore | None
    video: VideoControl

    async def health(self) -> dict[str, JsonValue]: ...


class HttpRoutes:
    def __init__(self, server: RoutedServer, registry: CollectorRegistry, *, metrics_token: SecretStr | None) -> None:
        self.server = server
        self.registry = registry
        self._metrics_token = metrics_token.get_secret_value().encode() if metrics_token is not None else None

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz),
            Route("/cameras/{camera_id}/snapshot.jpg", self.snapshot),
            Route("/evidence/{event_id}.jpg", self.evidence),
            Route("/evidence/{event_id}.webm", self.evidence_clip),
            Route("/metrics", self.metrics),
        ]

    async def integration_caller(self, request: Request) -> Principal | None:
        """The caller of an extension's route: an API token or an integration token."""
        return await self.caller(request, integration=True)

    async def caller(self, request: Request, image_path: str | None = None, *, integration: bool = False) -> Principal | None:
        """The caller as the database knows it now (account, revocation, role, scope), from an
        API token in the Authorization header or, for an <img> tag that cannot send headers, a
        picture token for this very path in `?token=` (never an API token: URLs get logged)."""
        s = self.server
        header = bearer(request.headers.get("authorization"))
        query = request.query_params.get("token") if image_path is not None else None
        if s.db is None or s.signer is None or not (header or query):
            return None
        try:
            if header:
                return await authenticate(s.db, s.signer, header, integration=integration)
            assert query is not None and image_path is not None
            return await authenticate(s.db, s.signer, query, image_path=image_path)
        except AuthError:
            return None

    async def _camera_group(self, camera_id: str) -> str | None:
        assert self.server.db is not None
        row = await CameraRepo(self.server.db).get_camera(camera_id)
        return row.group if row is not None else None

    async def snapshot(self, request: Request) -> Response:
        camera_id = request.path_params["camera_id"]
        p = await self.caller(request, snapshot_path(camera_id))
        if p is None:
            return JSONResponse(NOT_AUTHENTICATED, status_code=401)
        group = await self._camera_group(camera_id)
        if group is None or not p.sees_group(group):
            return JSONResponse({"error": f"no camera {camera_id!r}"}, status_code=404)
        try:
            jpeg = await self.server.video.snapshot(camera_id)
        except Exception as exc:
            return JSONResponse({"error": f"snapshot unavailable: {type(exc).__name__}"}, status_code=503)
        if jpeg is None:
            return JSONResponse({"error": f"no frame for camera {camera_id!r}"}, status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def evidence(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        p = await self.caller(request, evidence_path(event_id))
        if p is None:
            return JSONResponse(NOT_AUTHENTICATED, status_code=401)
        found = await self.server.evidence.find(event_id) if self.server.evidence is not None else None
        group = await self._camera_group(found.camera_id) if found is not None else None
        if found is None or group is None or not p.sees_group(group):
            return JSONResponse({"error": "no such evidence"}, status_code=404)
        return FileResponse(found.path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def evidence_clip(self, request: Request) -> Response:
        """An event's evidence clip: the still's access rule, and each viewing audited (the first
        request of a playback: the browser's later range requests continue it)."""
        event_id = request.path_params["event_id"]
        p = await self.caller(request, evidence_clip_path(event_id))
        if p is None:
            return JSONResponse(NOT_AUTHENTICATED, status_code=401)
        s = self.server
        found = await s.evidence.find_clip(event_id) if s.evidence is not None else None
        group = await self._camera_group(found.camera_id) if found is not None else None
        if found is None or group is None or not p.sees_group(group):
            return JSONResponse({"error": "no such evidence clip"}, status_code=404)
        if s.db is not None and request.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            await AuditRepo(s.db).record(
                at=time.time(),
                actor=p.username,
                action="evidence.clip_viewed",
                target=f"event:{event_id}",
                after={"camera": found.camera_id},
            )
        return FileResponse(found.path, media_type=CLIP_MIME, headers={"Cache-Control": "private, max-age=3600"})

    async def _caller_if_db(self, request: Request) -> Principal | None:
        """The API caller, or None also while the database is down (details stay private)."""
        try:
            return await self.caller(request)
        except Exception as exc:
            log.debug("caller of %s unknown: %s", request.url.path, exc)
            return None

    async def healthz(self, request: Request) -> Response:
        body = await self.server.health()
        code = 200 if body["status"] == "healthy" else 503
        p = await self._caller_if_db(request)
        if p is None or not p.is_admin:
            body = {"status": body["status"]}  # liveness only: no camera ids, addresses or errors
        return JSONResponse(body, status_code=code)

    async def metrics(self, request: Request) -> Response:
        token = bearer(request.headers.get("authorization"))
        scraper = (
            token is not None
            and self._metrics_token is not None
            and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self._metrics_token)
        )
        if not scraper:
            p = await self._caller_if_db(request)
            if p is None:
                return JSONResponse(NOT_AUTHENTICATED, status_code=401)
            if not p.is_admin:
                return JSONResponse({"error": "the metrics token or an admin's token is needed"}, status_code=403)
        return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4")
