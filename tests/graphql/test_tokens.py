"""Bearer tokens are JWTs (HS256 pinned, exp/iat/sub/aud required) and every forgery is refused
over real HTTP: a tampered claim, an empty signature, `alg: none`, another algorithm with the
right key, a missing expiry, an expired token, a token meant for pictures."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import jwt
from api_helpers import Api, Client

from smartcity.graphql.auth import Principal


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unb64(part: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return out


async def _refused(base: str, token: str) -> str:
    client = Client(base, token)
    try:
        body = await client.gql("{ me { username role } }")
    finally:
        await client.close()
    assert body["data"] is None, body
    message: str = body["errors"][0]["message"]
    assert message.startswith("not authenticated"), message
    return message


async def test_tokens_are_hs256_jwts_with_required_claims(api: Api) -> None:
    _, _, clients = api
    token = clients["police-op"].token
    assert token is not None
    header, claims, _ = token.split(".")
    assert _unb64(header) == {"alg": "HS256", "typ": "JWT"}
    body = _unb64(claims)
    assert body["aud"] == "smartcity:api"
    assert body["name"] == "police-op" and body["sub"].isdigit()
    assert body["exp"] - body["iat"] == 12 * 3600


async def test_forged_tokens_are_refused(api: Api) -> None:
    base, server, clients = api
    token = clients["police-op"].token
    assert token is not None
    header, claims, sig = token.split(".")
    admin_claims = {**_unb64(claims), "role": "admin", "groups": None}
    assert "invalid token signature" in await _refused(base, f"{header}.{_b64(admin_claims)}.{sig}")
    await _refused(base, f"{header}.{claims}.")
    await _refused(base, f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(admin_claims)}.")
    # the server's own key, but another algorithm than the pinned one, or a claim missing
    secret = (server.settings.storage.data_dir / "secret.key").read_bytes()
    with warnings.catch_warnings():  # PyJWT finds a 32-byte key short for HS512: that is beside the point
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        hs512 = jwt.encode(admin_claims, secret, algorithm="HS512")
    await _refused(base, hs512)
    no_exp = {k: v for k, v in admin_claims.items() if k != "exp"}
    assert "malformed token" in await _refused(base, jwt.encode(no_exp, secret, algorithm="HS256"))
    no_aud = {k: v for k, v in admin_claims.items() if k != "aud"}
    await _refused(base, jwt.encode(no_aud, secret, algorithm="HS256"))
    # expired, though signed by the server itself
    me = (await clients["police-op"].gql("{ me { id username role } }"))["data"]["me"]
    assert server.signer is not None
    old = server.signer.issue(Principal(me["id"], me["username"], me["role"], None), now=time.time() - 13 * 3600)
    assert "token expired" in await _refused(base, old)
    # the genuine token still works
    assert (await clients["police-op"].gql("{ me { username } }"))["data"]["me"] == {"username": "police-op"}
