"""Authentication for the API: signed, expiring bearer tokens; roles; camera-group scopes;
login rate limits.

A token is `v1.<payload>.<signature>` (base64url; HMAC-SHA256 with the server secret). It
carries the user id, name, role and camera-group scope, and expires (default 12 h). Tokens
are checked on every HTTP request and once per WebSocket connection (`connection_init`
payload `{"authorization": "Bearer ..."}`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("viewer", "operator", "admin")


class AuthError(Exception):
    """Missing, malformed, forged or expired credentials."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    groups: frozenset[str] | None  # None: every camera group
    issued_at: float = 0.0  # of the token it came from (revocation is checked against the database)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_operate(self) -> bool:
        return self.role in ("operator", "admin")

    def sees_group(self, group: str) -> bool:
        return self.is_admin or self.groups is None or group in self.groups


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes, *, ttl_s: float = 12 * 3600) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        # user id -> time before which that user's tokens are void (role change, disabling)

    def issue(self, p: Principal, *, now: float | None = None) -> str:
        now = time.time() if now is None else now
        payload = {
            "uid": p.user_id,
            "sub": p.username,
            "role": p.role,
            "groups": sorted(p.groups) if p.groups is not None else None,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._secret, f"v1.{body}".encode(), hashlib.sha256).digest())
        return f"v1.{body}.{sig}"

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        try:
            version, body, sig = token.split(".")
        except ValueError:
            raise AuthError("malformed token") from None
        if version != "v1":
            raise AuthError("unknown token version")
        expected = _b64(hmac.new(self._secret, f"v1.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, sig):
            raise AuthError("invalid token signature")
        try:
            payload: dict[str, Any] = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            raise AuthError("malformed token") from None
        if float(payload.get("exp", 0)) < (time.time() if now is None else now):
            raise AuthError("token expired")
        groups = payload.get("groups")
        return Principal(
            user_id=int(payload["uid"]),
            username=str(payload["sub"]),
            role=str(payload["role"]),
            groups=frozenset(groups) if groups is not None else None,
            issued_at=float(payload.get("iat", 0)),
        )


def bearer(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (or a bare token)."""
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return value


def load_secret(data_dir: Path) -> bytes:
    """`$SMARTCITY_SECRET`, else `data_dir/secret.key`, created once (0600) with 32 random bytes."""
    env = os.environ.get("SMARTCITY_SECRET")
    if env:
        return env.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class LoginLimiter:
    """At most `per_user` failed logins per user name and `per_client` per client address in
    `window_s`; a success clears the user's failures."""

    def __init__(self, *, per_user: int = 5, per_client: int = 20, window_s: float = 300.0) -> None:
        self.per_user = per_user
        self.per_client = per_client
        self.window_s = window_s
        self._user: dict[str, deque[float]] = {}
        self._client: dict[str, deque[float]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        q = table.setdefault(key, deque())
        while q and q[0] < now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, client: str, now: float | None = None) -> float:
        """0 when a login may be tried now, else seconds to wait."""
        now = time.monotonic() if now is None else now
        waits = []
        for table, key, limit in ((self._user, username, self.per_user), (self._client, client, self.per_client)):
            q = self._recent(table, key, now)
            if len(q) >= limit:
                waits.append(q[0] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, username: str, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(self._user, username, now).append(now)
        self._recent(self._client, client, now).append(now)

    def succeeded(self, username: str) -> None:
        self._user.pop(username, None)
