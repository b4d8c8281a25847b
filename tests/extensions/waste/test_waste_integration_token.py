"""A sensor gateway posts readings with a long-lived integration token an admin issued for its
machine account: the extensions' routes take it, GraphQL and pictures refuse it, only admins
issue one (audited, never the token), and any change of the account revokes it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from waste_harness import city, gql, native, running, token

from smartcity.graphql.auth import SERVICE_AUDIENCE, AuthError, Principal, TokenSigner
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.users import create_user

ISSUE = """mutation($u: String!, $d: Int!) { issueIntegrationToken(username: $u, days: $d) {
  __typename ... on IntegrationToken { token username expiresAt }
  ... on ValidationError { errors { field message } } ... on NotFoundError { message } ... on NotAuthorized { message } } }"""


async def test_integration_token_posts_readings_and_nothing_else(tmp_path: Path) -> None:
    now = time.time()
    async with running(tmp_path / "db.sqlite", city(2)) as (server, client, _ext):
        assert server.db is not None
        await create_user(server.db, "lorawan-gw", "a long machine password", "operator", [], actor="test")
        admin = await token(client, "boss")
        op = await token(client, "chief")

        refused = await gql(client, ISSUE, op, {"u": "lorawan-gw", "d": 365})
        assert refused["issueIntegrationToken"]["__typename"] == "NotAuthorized"
        bad_days = await gql(client, ISSUE, admin, {"u": "lorawan-gw", "d": 400})
        assert bad_days["issueIntegrationToken"]["errors"] == [{"field": "days", "message": "between 1 and 366"}]
        nobody = await gql(client, ISSUE, admin, {"u": "ghost", "d": 30})
        assert nobody["issueIntegrationToken"] == {"__typename": "NotFoundError", "message": "no enabled user 'ghost'"}

        issued = (await gql(client, ISSUE, admin, {"u": "lorawan-gw", "d": 365}))["issueIntegrationToken"]
        assert issued["username"] == "lorawan-gw"
        assert issued["expiresAt"].startswith(time.strftime("%Y", time.gmtime(now + 365 * 86_400)))
        machine = {"authorization": f"Bearer {issued['token']}"}

        r = await client.post("/ext/waste/readings", json=native("B00", 0.4, now - 60, "gw-1"), headers=machine)
        assert r.status_code == 201, r.text
        # the same token opens nothing outside the extensions' routes
        r = await client.post("/graphql", json={"query": "{ wasteBins { id level } }"}, headers=machine)
        assert r.json()["data"] is None and "not authenticated" in r.json()["errors"][0]["message"]
        r = await client.get("/cameras/any/snapshot.jpg", headers=machine)
        assert r.status_code == 401

        entries = await AuditRepo(server.db).page(action="token.integration")
        assert [(e.actor, e.target, e.after["days"]) for e in entries] == [("boss", "user:lorawan-gw", 365)]
        assert issued["token"] not in repr(entries)

        # any change of the machine account revokes its tokens (here: a change of nothing)
        change = 'mutation { updateUser(username: "lorawan-gw", input: {}) { __typename } }'
        assert (await gql(client, change, admin))["updateUser"]["__typename"] == "User"
        r = await client.post("/ext/waste/readings", json=native("B00", 0.5, now - 30, "gw-2"), headers=machine)
        assert r.status_code == 401


def test_integration_tokens_and_api_tokens_are_not_interchangeable() -> None:
    signer = TokenSigner(b"k" * 32)
    p = Principal(7, "gw", "operator", None)
    service = signer.issue_service(p, ttl_s=86_400.0)
    assert signer.audience_of(service) == SERVICE_AUDIENCE
    assert signer.verify_service(service).user_id == 7
    with pytest.raises(AuthError, match="not valid here"):
        signer.verify(service)
    with pytest.raises(AuthError, match="not valid here"):
        signer.verify_service(signer.issue(p))
    with pytest.raises(AuthError, match="expired"):
        signer.verify_service(signer.issue_service(p, ttl_s=10.0, now=time.time() - 60))
    with pytest.raises(ValueError, match="between 1 s and 366 days"):
        signer.issue_service(p, ttl_s=400 * 86_400.0)
    assert signer.audience_of("not.a.token") is None
