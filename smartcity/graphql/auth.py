"""Authentication for the API: signed, expiring bearer tokens; roles; camera-group scopes;
login rate limits.

A token is a JWT (HS256, pinned, with the server secret) whose `aud` says what it is for: an
API token (user id, name, role and scope as issued; expires after 12 h) checked on every HTTP
request and once per WebSocket connection (`connection_init` payload `{"authorization":
"Bearer ..."}`), or a picture token bound to one image path that expires within minutes.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

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


API_AUDIENCE = "smartcity:api"
IMAGE_AUDIENCE = "smartcity:image"
# integration tokens (sensor gateways, fleet and signal systems): long-lived, accepted only on
# the extensions' HTTP routes (/ext/...), never by GraphQL, pictures or live views
SERVICE_AUDIENCE = "smartcity:service"
MAX_SERVICE_TTL_S = 366 * 86_400.0
ALGORITHM = "HS256"  # pinned: the token's own header never chooses how it is checked
MAX_TOKEN_CHARS = 4096  # ours are ~300; a bigger one is refused before any parsing
_REQUIRED = ["exp", "iat", "sub", "aud"]


class TokenSigner:
    """Issues and checks JWTs (HS256 with the server secret). Two kinds, told apart by `aud`:
    API tokens (`smartcity:api`, `ttl_s`) go in the Authorization header; picture tokens
    (`smartcity:image`, `image_ttl_s`, a `path` claim naming one picture) go in the `?token=` of
    an <img> URL and open that picture only. Neither is accepted where the other is expected.
    A valid signature only says who the caller was: `access.current_principal` reads the
    account, revocation, role and scope from the database on every request."""

    def __init__(self, secret: bytes, *, ttl_s: float = 12 * 3600, image_ttl_s: float = 300) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        self.image_ttl_s = image_ttl_s

    def _encode(self, claims: dict[str, Any], now: float | None, ttl_s: float) -> str:
        # iat stays fractional: revocation compares it with users.tokens_valid_after, and a
        # login just after a revocation (same second) must get a token that is valid
        now = time.time() if now is None else now
        return jwt.encode({**claims, "iat": now, "exp": now + ttl_s}, self._secret, algorithm=ALGORITHM)

    def issue(self, p: Principal, *, now: float | None = None) -> str:
        """An API token (Authorization header, WebSocket connection_init)."""
        claims = {
            "sub": str(p.user_id),
            "name": p.username,
            "aud": API_AUDIENCE,
            "role": p.role,
            "groups": sorted(p.groups) if p.groups is not None else None,
        }
        return self._encode(claims, now, self.ttl_s)

    def issue_service(self, p: Principal, *, ttl_s: float, now: float | None = None) -> str:
        """An integration token for a machine acting as user `p` (at most MAX_SERVICE_TTL_S):
        only the extensions' HTTP routes take it; revoked like the user's other tokens."""
        if not 0 < ttl_s <= MAX_SERVICE_TTL_S:
            raise ValueError(f"an integration token lives between 1 s and {MAX_SERVICE_TTL_S / 86_400:.0f} days")
        return self._encode({"sub": str(p.user_id), "name": p.username, "aud": SERVICE_AUDIENCE}, now, ttl_s)

    def issue_image(self, p: Principal, path: str, *, now: float | None = None) -> str:
        """A picture token: opens `path` (e.g. /evidence/<id>.jpg) for `image_ttl_s` seconds.
        `auth_time` is the issue time of the caller's API token: revoking that token (a user
        change) voids the picture tokens handed out under it too, even those issued later
        (a subscription that runs until its next session check)."""
        claims = {"sub": str(p.user_id), "name": p.username, "aud": IMAGE_AUDIENCE, "path": path, "auth_time": p.issued_at}
        return self._encode(claims, now, self.image_ttl_s)

    def verify(self, token: str) -> Principal:
        """The caller of an API token (role and scope as issued: re-read them from the database)."""
        claims = self._decode(token, API_AUDIENCE)
        groups = claims.get("groups")
        return Principal(
            user_id=self._user_id(claims),
            username=str(claims.get("name", "")),
            role=str(claims.get("role", "")),
            groups=frozenset(str(g) for g in groups) if isinstance(groups, list) else None,
            issued_at=float(claims["iat"]),
        )

    def verify_service(self, token: str) -> Principal:
        """The caller of an integration token (no role and no scope until `current_principal`
        reads them from the database)."""
        claims = self._decode(token, SERVICE_AUDIENCE)
        return Principal(self._user_id(claims), str(claims.get("name", "")), "", frozenset(), float(claims["iat"]))

    def verify_image(self, token: str, path: str) -> Principal:
        """The caller of a picture token for `path`; no role and no scope until
        `current_principal` reads them from the database."""
        claims = self._decode(token, IMAGE_AUDIENCE)
        if claims.get("path") != path:
            raise AuthError("token not valid for this picture")
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float):
            raise AuthError("malformed token")
        return Principal(self._user_id(claims), str(claims.get("name", "")), "", frozenset(), float(auth_time))

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                options={"require": _REQUIRED, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token signature") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token not valid here") from None
        # anything else an attacker can make the parser raise (bad base64, JSON, non-ASCII,
        # nesting) is a malformed token, never a server error
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise AuthError("malformed token") from None
        if not isinstance(claims.get("iat"), int | float):
            raise AuthError("malformed token")
        return claims

    @staticmethod
    def audience_of(token: str) -> str | None:
        """The `aud` a token claims, unchecked (to choose how to check it); None if unreadable."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            return None
        return aud if isinstance(aud, str) else None

    @staticmethod
    def _user_id(claims: dict[str, Any]) -> int:
        try:
            return int(claims["sub"])
        except ValueError:
            raise AuthError("malformed token") from None


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

