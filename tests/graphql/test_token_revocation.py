"""A user change voids the user's tokens in every server process and after a restart: the
revocation time lives in the database, not in one process's memory."""

from __future__ import annotations

import pytest

from smartcity.graphql.access import current_principal
from smartcity.graphql.auth import AuthError, Principal, TokenSigner
from smartcity.storage.db import Database, migrate
from smartcity.storage.users import create_user, update_user


async def test_revocation_holds_for_another_process_and_after_a_restart(db_url: str) -> None:
    await migrate(db_url)
    db = Database(db_url)
    try:
        user = await create_user(db, "dispatcher", "a long enough passphrase", "operator", actor="test")
        secret = b"s" * 32
        issued = TokenSigner(secret).issue(Principal(user.id, "dispatcher", "operator", None))
        # process A hands out the token; process B (same secret, fresh memory) accepts it
        other = TokenSigner(secret)
        assert (await current_principal(db, other.verify(issued))).username == "dispatcher"
        await update_user(db, "dispatcher", actor="admin", role="viewer")
        # any process, any time later: the old token is refused, a new login works
        with pytest.raises(AuthError, match="token revoked"):
            await current_principal(db, TokenSigner(secret).verify(issued))
        fresh = other.issue(Principal(user.id, "dispatcher", "viewer", None))
        again = await current_principal(db, TokenSigner(secret).verify(fresh))
        assert again.role == "viewer" and again.issued_at > 0
    finally:
        await db.dispose()


async def test_picture_tokens_fall_with_the_session_they_were_issued_under(db_url: str) -> None:
    """A live subscription keeps handing out evidence URLs until its next session check: those
    issued after the user's tokens were revoked must be refused like the session itself."""
    await migrate(db_url)
    db = Database(db_url)
    try:
        user = await create_user(db, "watcher", "a long enough passphrase", "viewer", actor="test")
        signer = TokenSigner(b"s" * 32)
        session = await current_principal(db, signer.verify(signer.issue(Principal(user.id, "watcher", "viewer", None))))
        path = "/evidence/e1.jpg"
        ok = signer.issue_image(session, path)
        assert (await current_principal(db, signer.verify_image(ok, path))).username == "watcher"
        with pytest.raises(AuthError, match="not valid for this picture"):
            signer.verify_image(ok, "/evidence/e2.jpg")
        await update_user(db, "watcher", actor="admin", role="operator")
        late = signer.issue_image(session, path)  # after the revocation, under the old session
        for token in (ok, late):
            with pytest.raises(AuthError, match="token revoked"):
                await current_principal(db, signer.verify_image(token, path))
    finally:
        await db.dispose()
