"""Issue 11, item 15: every HTTP response tells the browser what it may load and frame, and the
schema is not handed out: introspection is off in `serve`, on in `demo` for logged-in users only,
and no GraphiQL page (it loads its code from a third-party CDN) is served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Api, Client, running_server
from starlette.types import Message, Receive, Scope, Send

from smartcity.core.config import demo_settings, load_settings
from smartcity.http_headers import SecurityHeaders

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_QUERY = '{ __type(name: "Camera") { fields { name } } }'


def csp(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, *sources = directive.split()
        out[name] = sources
    return out


def assert_secured(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert {k: response.headers.get(k) for k in EXPECTED} == EXPECTED, where
    assert csp(response) == CSP_DIRECTIVES, where
    assert len(response.headers.get_list("content-security-policy")) == 1, where


def refused(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or []
    return body.get("data") is None and any("introspection" in e["message"].lower() for e in errors)


async def test_every_http_response_carries_the_security_headers(api: Api) -> None:
    base, _, clients = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        index = await http.get("/")
        assert index.status_code == 200 and "operator console" in index.text
        script = await http.get("/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        style = await http.get("/css/app.css")
        assert style.status_code == 200
        gql = await http.post("/graphql", json={"query": "{ __typename }"})
        assert gql.json() == {"data": {"__typename": "Query"}}
        health = await http.get("/healthz")
        assert health.status_code == 200
        missing = await http.get("/js/no-such-file.js")
        assert missing.status_code == 404
        too_big = await http.post("/graphql", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
        assert too_big.status_code == 413
        # no Ray here: no picture, but an answer all the same
        picture = await http.get("/cameras/cam-p/snapshot.jpg", headers={"authorization": f"Bearer {clients['admin'].token}"})
        assert picture.status_code >= 400
    for response in (index, script, style, gql, health, missing, too_big, picture):
        assert_secured(response)


async def test_the_console_page_has_no_inline_script_or_style() -> None:
    """The policy allows no inline code: the page's scripts and styles are files."""
    import re

    import smartcity.app

    html = (smartcity.app.WEB_DIR / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html and " style=" not in html
    assert re.findall(r"\son[a-z]+=", html) == []


async def test_introspection_is_refused_by_default_in_serve(api: Api) -> None:
    _, _, clients = api
    assert load_settings(environ={}).server.introspection is False
    for who in ("anonymous", "admin"):
        for query in (INTROSPECTION, TYPE_QUERY):
            assert refused(await clients[who].gql(query)), (who, query)
    assert (await clients["anonymous"].gql("{ __typename }")) == {"data": {"__typename": "Query"}}


def test_demo_turns_introspection_on_unless_the_file_says_no() -> None:
    assert demo_settings(load_settings(environ={})).server.introspection is True
    off = load_settings(overrides={"server": {"introspection": False}}, environ={})
    assert demo_settings(off).server.introspection is False


async def test_introspection_when_on_answers_logged_in_users_only(tmp_path: Path, storage_url: str) -> None:
    demo = demo_settings(load_settings(environ={}))
    extra = {"server": {"introspection": demo.server.introspection}}
    async with running_server(tmp_path, storage_url, extra=extra) as (base, _):
        anonymous, viewer, forged = Client(base), Client(base), Client(base, token="not-a-token")
        try:
            await viewer.login("police-viewer")
            for query in (INTROSPECTION, TYPE_QUERY):
                assert refused(await anonymous.gql(query)), query
                assert refused(await forged.gql(query)), query  # a token that does not authenticate is none
            assert (await viewer.gql(INTROSPECTION)) == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
            fields = (await viewer.gql(TYPE_QUERY))["data"]["__type"]["fields"]
            assert "group" in {f["name"] for f in fields}
        finally:
            for c in (anonymous, viewer, forged):
                await c.close()


@pytest.mark.parametrize("introspection", [False, True])
async def test_no_graphiql_page(tmp_path: Path, storage_url: str, introspection: bool) -> None:
    extra = {"server": {"introspection": introspection}}
    async with (
        running_server(tmp_path, storage_url, extra=extra) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        r = await http.get("/graphql", headers={"accept": "text/html"})
    assert r.status_code == 404
    assert "graphiql" not in r.text.lower() and "unpkg" not in r.text
    assert_secured(r)


async def test_headers_a_route_sets_itself_are_kept() -> None:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-security-policy", b"default-src 'none'"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await SecurityHeaders(route)({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    headers = sent[0]["headers"]
    assert [v for k, v in headers if k == b"content-security-policy"] == [b"default-src 'none'"]
    assert (b"x-frame-options", b"DENY") in headers and (b"content-type", b"text/plain") in headers
